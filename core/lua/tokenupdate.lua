-- TokenUpdate: store the latest push token and magic of this channel and
-- enable it. A user channel is registered under its device so that a new
-- Authenticate can clear its queue.
--   ARGV[4] this enrollment's base   ARGV[5..] field/value pairs
local refused = mdm_bind_check()
if refused then
    return refused
end
local t = mdm_now()
if KEYS[2] ~= KEYS[1] then
    redis.call('SADD', KEYS[6], ARGV[4])
end
redis.call('HSETNX', KEYS[2], 'first', t)
redis.call('HDEL', KEYS[2], 'push_dead', 'checkout')
local f = {'enabled', '1', 'last', t}
for i = 5, #ARGV do
    f[#f + 1] = ARGV[i]
end
redis.call('HSET', KEYS[2], unpack(f))
return {'OK'}
