-- Authenticate: (re)bind the certificate, clear the queues of the device
-- and of its user channels, store the device facts, disable until the
-- first TokenUpdate.
--   ARGV[4] device base (key prefix of the device channel)
--   ARGV[5..] field/value pairs for the device record; cert_der (the
--   bound certificate's DER) goes to <device base>:der instead
-- The certificate was claimed globally beforehand (SET NX on its own key).
if mdm_revoked() then
    return {'REVOKED'}
end
local t = mdm_now()
if ARGV[1] ~= 'off' and ARGV[2] ~= '' then
    local cur = redis.call('HMGET', KEYS[1], 'cert', 'old_cert')
    if cur[2] == ARGV[2] then
        return {'RENEWED'}
    end
    if cur[1] ~= ARGV[2] then
        -- a new identity: an offer made for the previous one is void
        redis.call('HSET', KEYS[1], 'cert', ARGV[2])
        redis.call('HDEL', KEYS[1], 'renew_cn', 'renew_for', 'renew_at')
    end
    if mdm_not_after ~= '' then
        redis.call('HSET', KEYS[1], 'not_after', mdm_not_after)
    end
end
local base = ARGV[4]
redis.call('DEL', base .. ':q', base .. ':cmd', base .. ':nn')
for _, ub in ipairs(redis.call('SMEMBERS', KEYS[6])) do
    redis.call('DEL', ub .. ':q', ub .. ':cmd', ub .. ':nn')
end
if redis.call('HSETNX', KEYS[1], 'first', t) == 0 then
    redis.call('HDEL', KEYS[1], 'checkout')
end
local f = {'enabled', '0', 'last', t}
for i = 5, #ARGV - 1, 2 do
    if ARGV[i] == 'cert_der' then
        -- the bound certificate's DER, beside the record: a 1 KB value
        -- would turn the record's compact encoding into a hash table
        redis.call('SET', base .. ':der', ARGV[i + 1])
    else
        f[#f + 1] = ARGV[i]
        f[#f + 1] = ARGV[i + 1]
    end
end
redis.call('HSET', KEYS[1], unpack(f))
return {'OK'}
