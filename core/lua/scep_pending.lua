-- SCEP admin: the requests waiting for approval (approval manual).
--   ARGV[1] 'list': KEYS[1] pending index; ARGV[2] transaction key prefix
--     (the records share the index's {scep} slot). Entries whose record
--     expired or is no longer pending leave the index. At most 1000.
--     Reply: {{transactionID, subject, kind, requested}, ...}
--   ARGV[1] 'reject': KEYS[1] pending index, KEYS[2] transaction;
--     ARGV[3] transactionID, ARGV[4] seconds the rejection is kept (a
--     CertPoll or resend then gets FAILURE)
--     Reply: {'OK'} | {'GONE'} (no pending request)
if ARGV[1] == 'list' then
    local out = {}
    for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, 999)) do
        local v = redis.call('HMGET', ARGV[2] .. id, 'state', 'subject',
                             'kind', 'requested')
        if v[1] == 'pending' then
            out[#out + 1] = {id, v[2] or '', v[3] or '', v[4] or ''}
        else
            redis.call('ZREM', KEYS[1], id)
        end
    end
    return out
end
if redis.call('HGET', KEYS[2], 'state') ~= 'pending' then
    redis.call('ZREM', KEYS[1], ARGV[3])
    return {'GONE'}
end
redis.call('HSET', KEYS[2], 'state', 'rejected', 'rejected', mdm_now())
redis.call('HDEL', KEYS[2], 'csr')
redis.call('ZREM', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {'OK'}
