-- Prelude shared by every device-facing script (prepended at build time).
--
-- Device scripts take the same first keys and arguments:
--   KEYS[1] device-channel record   KEYS[2] this enrollment's record
--   KEYS[3] queue   KEYS[4] command bodies   KEYS[5] NotNow set
--   KEYS[6] user channels of the device
--   ARGV[1] binding mode (strict|retro|off)   ARGV[2] certificate SHA-256
--   ARGV[3] FLAG[:NOTAFTER[:CN[:d]]]: FLAG 1 when the certificate was
--           just claimed (retro binding), 2 when it was just claimed as
--           the renewal of the bound one; NOTAFTER its notAfter (UNIX
--           seconds); CN the SHA-256 (hex) of its subject CN when that is a
--           renewal name ("mdm-renew-..."), else empty; "d": the last ARGV
--           is the certificate's DER (a renewal claim with store_cert on),
--           taken off ARGV here and stored if the renewal rebinds
-- Every key carries the device's hash tag, so one script = one slot.

local mdm_flag, mdm_not_after, mdm_cn, mdm_d =
    string.match(ARGV[3] or '', '^(%d):?(%d*):?(%x*):?(d?)$')
mdm_flag, mdm_not_after, mdm_cn = mdm_flag or '', mdm_not_after or '',
    mdm_cn or ''
local mdm_der = nil
if mdm_d == 'd' then
    mdm_der = table.remove(ARGV)
end

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

-- KEYS[1] is known to exist (its bound certificate was read): mdm_touch
-- need not ask
local mdm_rec_seen = false

-- nil when the request may proceed, else the refusal reply.
local function mdm_bind_check()
    local mode, hash = ARGV[1], ARGV[2]
    if mode == 'off' then
        if mdm_revoked() then
            return {'REVOKED'}
        end
        return nil
    end
    -- the bound certificate and this one's revocation mark in one call
    local rc = redis.call('HMGET', KEYS[1], 'cert', 'revoked:' .. hash)
    if hash ~= '' and rc[2] then
        return {'REVOKED'}
    end
    local cur = rc[1]
    mdm_rec_seen = cur and true or false
    if cur == hash then
        return nil
    end
    if not cur then
        if mode == 'retro' then
            if mdm_flag == '1' then
                redis.call('HSET', KEYS[1], 'cert', hash)
                if mdm_not_after ~= '' then
                    redis.call('HSET', KEYS[1], 'not_after', mdm_not_after)
                end
                return nil
            end
            return {'RETRO'}
        end
        return {'UNBOUND'}
    end
    -- identity renewal (README "Identity renewal"): a certificate whose CN
    -- is the one offered to this enrollment replaces the bound one, once
    -- its binding key is claimed; the replaced one is refused from then
    local r = redis.call('HMGET', KEYS[1], 'renew_cn', 'old_cert')
    if r[2] == hash then
        return {'RENEWED'}
    end
    if mdm_cn ~= '' and r[1] == mdm_cn then
        if mdm_flag ~= '2' then
            return {'RENEW'}
        end
        redis.call('HSET', KEYS[1], 'cert', hash, 'old_cert', cur,
                   'renewed', mdm_now())
        if mdm_not_after ~= '' then
            redis.call('HSET', KEYS[1], 'not_after', mdm_not_after)
        end
        redis.call('HDEL', KEYS[1], 'renew_cn')
        if mdm_der then
            -- beside the record, as authenticate.lua stores it
            redis.call('SET', string.sub(KEYS[1], 1, -5) .. ':der', mdm_der)
        end
        return nil
    end
    return {'MISMATCH'}
end

local function mdm_touch(key, t)
    if (key == KEYS[1] and mdm_rec_seen) or redis.call('EXISTS', key) == 1 then
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
