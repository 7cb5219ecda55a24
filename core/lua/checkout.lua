-- CheckOut: the profile was removed; keep the record, stop pushing.
local refused = mdm_bind_check()
if refused then
    return refused
end
local t = mdm_now()
if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('HSET', KEYS[2], 'enabled', '0', 'checkout', t, 'last', t)
end
return {'OK'}
