-- Bootstrap token escrow on the device record.
--   ARGV[4] set | get   ARGV[5] token for set ('' deletes)
-- get also serves ReturnToService, which may hand the token back.
local refused = mdm_bind_check()
if refused then
    return refused
end
mdm_touch(KEYS[1], mdm_now())
if ARGV[4] == 'set' then
    if ARGV[5] == '' then
        redis.call('HDEL', KEYS[1], 'bootstrap')
    else
        redis.call('HSET', KEYS[1], 'bootstrap', ARGV[5])
    end
    return {'OK'}
end
local tok = redis.call('HGET', KEYS[1], 'bootstrap')
if tok then
    return {'OK', tok}
end
return {'OK'}
