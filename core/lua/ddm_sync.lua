-- Admin: replace an enrollment's materialized declarations. When its
-- DeclarationsToken changes, record the new token and queue a
-- DeclarativeManagement command (replacing one still queued).
--   KEYS as for device scripts (binding arguments unused), then
--   KEYS[7] effective declarations, KEYS[8] DDM state
--   ARGV[4] new token   ARGV[5] timestamp   ARGV[6] token of no declaration
--   ARGV[7] CommandUUID   ARGV[8] command plist
--   ARGV[9..] identifier, "category ServerToken", ...
-- Reply: {'CHANGED'} | {'SAME'} | {'UNKNOWN'} (no such enrollment)
if redis.call('EXISTS', KEYS[2]) == 0 then
    return {'UNKNOWN'}
end
local old = redis.call('HGET', KEYS[8], 'token') or ARGV[6]
if old == ARGV[4] then
    return {'SAME'}
end
redis.call('DEL', KEYS[7])
mdm_hset_from(KEYS[7], 9)
local prev = redis.call('HGET', KEYS[8], 'cmd')
if prev then
    -- a DeclarativeManagement command still queued is superseded
    redis.call('LREM', KEYS[3], 0, prev)
    redis.call('HDEL', KEYS[4], prev)
    redis.call('SREM', KEYS[5], prev)
end
redis.call('HSET', KEYS[4], ARGV[7], ARGV[8])
redis.call('RPUSH', KEYS[3], ARGV[7])
redis.call('HSET', KEYS[8], 'token', ARGV[4], 'timestamp', ARGV[5],
           'cmd', ARGV[7])
return {'CHANGED'}
