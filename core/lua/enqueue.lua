-- Admin: append a command to an enrollment's queue.
--   KEYS as for device scripts (binding arguments unused)
--   ARGV[4] CommandUUID   ARGV[5] command plist   ARGV[6] result prefix
-- Reply: {'OK', queue length} | {'UNKNOWN'} | {'DUP'}
if redis.call('EXISTS', KEYS[2]) == 0 then
    return {'UNKNOWN'}
end
local uuid = ARGV[4]
if redis.call('HEXISTS', KEYS[4], uuid) == 1 or
   redis.call('EXISTS', ARGV[6] .. uuid) == 1 then
    return {'DUP'}
end
redis.call('HSET', KEYS[4], uuid, ARGV[5])
return {'OK', tostring(redis.call('RPUSH', KEYS[3], uuid))}
