-- A command report: record the result and return the next command, in
-- one atomic step.
--   ARGV[4] Status   ARGV[5] CommandUUID   ARGV[6] raw report body
--   ARGV[7] result key prefix   ARGV[8] result TTL (seconds)
-- Reply: {'OK'} (queue done for this session) or {'OK', uuid, command}.
local refused = mdm_bind_check()
if refused then
    return refused
end
local status, uuid = ARGV[4], ARGV[5]
local t = mdm_now()
local q, cmd, nn = KEYS[3], KEYS[4], KEYS[5]

if status == 'Idle' then
    -- a new session: NotNow'd commands are eligible again
    redis.call('DEL', nn)
elseif status == 'NotNow' then
    if redis.call('HEXISTS', cmd, uuid) == 1 then
        redis.call('SADD', nn, uuid)
    end
else
    -- Acknowledged, Error, CommandFormatError are final
    redis.call('LREM', q, 1, uuid)
    redis.call('HDEL', cmd, uuid)
    redis.call('SREM', nn, uuid)
    local rk = ARGV[7] .. uuid
    redis.call('HSET', rk, 'status', status, 'time', t, 'body', ARGV[6])
    redis.call('EXPIRE', rk, tonumber(ARGV[8]))
end
mdm_touch(KEYS[2], t)

-- (an Idle just emptied the NotNow set)
local skip = status ~= 'Idle' and redis.call('SCARD', nn) > 0
local start = 0
while true do
    local batch = redis.call('LRANGE', q, start, start + 31)
    if #batch == 0 then
        return {'OK'}
    end
    for _, u in ipairs(batch) do
        if not skip or redis.call('SISMEMBER', nn, u) == 0 then
            local body = redis.call('HGET', cmd, u)
            if body then
                return {'OK', u, body}
            end
            -- a queue entry without a body cannot be sent: drop it
            redis.call('LREM', q, 1, u)
            start = start - 1
        end
    end
    start = start + #batch
end
