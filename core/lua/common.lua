-- Prelude shared by every device-facing script (prepended at build time).
--
-- Device scripts take the same first keys and arguments:
--   KEYS[1] device-channel record   KEYS[2] this enrollment's record
--   KEYS[3] queue   KEYS[4] command bodies   KEYS[5] NotNow set
--   KEYS[6] user channels of the device
--   ARGV[1] binding mode (strict|retro|off)   ARGV[2] certificate SHA-256
--   ARGV[3] 1 when the certificate was just claimed (retro binding)
-- Every key carries the device's hash tag, so one script = one slot.

local function mdm_now()
    return redis.call('TIME')[1]
end

-- True when the admin revoked this certificate on this device (revoke.lua):
-- read from the record the script touches anyway, so revocation costs the
-- device path no extra round trip.
local function mdm_revoked()
    return ARGV[2] ~= '' and
        redis.call('HEXISTS', KEYS[1], 'revoked:' .. ARGV[2]) == 1
end

-- nil when the request may proceed, else the refusal reply.
local function mdm_bind_check()
    local mode, hash = ARGV[1], ARGV[2]
    if mdm_revoked() then
        return {'REVOKED'}
    end
    if mode == 'off' then
        return nil
    end
    local cur = redis.call('HGET', KEYS[1], 'cert')
    if cur == hash then
        return nil
    end
    if not cur then
        if mode == 'retro' then
            if ARGV[3] == '1' then
                redis.call('HSET', KEYS[1], 'cert', hash)
                return nil
            end
            return {'RETRO'}
        end
        return {'UNBOUND'}
    end
    return {'MISMATCH'}
end

local function mdm_touch(key, t)
    if redis.call('EXISTS', key) == 1 then
        redis.call('HSET', key, 'last', t)
    end
end

-- HSET key with the field, value pairs ARGV[first..], in chunks (unpack
-- has a limit).
local function mdm_hset_from(key, first)
    local i = first
    while i < #ARGV do
        local chunk = {}
        while i < #ARGV and #chunk < 1000 do
            chunk[#chunk + 1] = ARGV[i]
            chunk[#chunk + 1] = ARGV[i + 1]
            i = i + 2
        end
        redis.call('HSET', key, unpack(chunk))
    end
end
