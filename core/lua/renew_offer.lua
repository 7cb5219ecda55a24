-- Admin (renewal sweep): offer a fresh identity to an enrollment whose
-- certificate expires soon, once per certificate. Queues the
-- InstallProfile command and remembers the offer, only while the record
-- is still bound to the certificate the sweep read.
--   KEYS as for device scripts (binding arguments unused)
--   ARGV[4] SHA-256 of the bound certificate the sweep read
--   ARGV[5] CommandUUID   ARGV[6] command plist   ARGV[7] result prefix
--   ARGV[8] SHA-256 (hex) of the renewal certificate's CN
-- Reply: {'OK', queue length} | {'SKIP'}
local r = redis.call('HMGET', KEYS[1], 'cert', 'renew_for')
if r[1] ~= ARGV[4] or r[2] == ARGV[4] then
    return {'SKIP'}
end
local uuid = ARGV[5]
if redis.call('HEXISTS', KEYS[4], uuid) == 1 or
   redis.call('EXISTS', ARGV[7] .. uuid) == 1 then
    return {'SKIP'}
end
redis.call('HSET', KEYS[1], 'renew_for', ARGV[4], 'renew_cn', ARGV[8],
           'renew_at', mdm_now())
redis.call('HSET', KEYS[4], uuid, ARGV[6])
return {'OK', tostring(redis.call('RPUSH', KEYS[3], uuid))}
