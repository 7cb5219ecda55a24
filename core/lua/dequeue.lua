-- Admin: remove one command (ARGV[4] = uuid), or the whole queue when
-- ARGV[4] is empty. Reply: {'OK', number removed}
local q, cmd, nn = KEYS[3], KEYS[4], KEYS[5]
if ARGV[4] == '' then
    local n = redis.call('LLEN', q)
    redis.call('DEL', q, cmd, nn)
    return {'OK', tostring(n)}
end
local n = redis.call('LREM', q, 0, ARGV[4])
redis.call('HDEL', cmd, ARGV[4])
redis.call('SREM', nn, ARGV[4])
return {'OK', tostring(n)}
