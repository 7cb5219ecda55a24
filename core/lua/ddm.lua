-- DeclarativeManagement check-ins: check the binding, record the contact
-- and answer from the enrollment's materialized declarations (kept by the
-- admin side, ddm_sync.lua), all in the device's slot.
--   KEYS[7] effective declarations (hash: identifier -> "category token")
--   KEYS[8] DDM state (hash: token, timestamp, cmd)
--   KEYS[9] status items (hash: dotted item name -> JSON value)
--   KEYS[10] status report (hash: time, errors, report)
--   ARGV[4] tokens | items | decl | status
--   decl:   ARGV[5] category, ARGV[6] identifier
--   status: ARGV[5] errors (JSON array), ARGV[6] raw report,
--           ARGV[7..] item name, JSON value, ...
-- Reply: tokens {OK, token, timestamp}; items {OK, token, timestamp,
-- identifier, "category token", ...}; decl {OK, ServerToken} | {NODECL};
-- status {OK}; or a binding refusal.
local refused = mdm_bind_check()
if refused then
    return refused
end
local t = mdm_now()
mdm_touch(KEYS[2], t)
local op = ARGV[4]
if op == 'decl' then
    local v = redis.call('HGET', KEYS[7], ARGV[6])
    if not v then
        return {'NODECL'}
    end
    local sp = string.find(v, ' ', 1, true)
    if not sp or string.sub(v, 1, sp - 1) ~= ARGV[5] then
        return {'NODECL'}
    end
    return {'OK', string.sub(v, sp + 1)}
end
if op == 'status' then
    mdm_hset_from(KEYS[9], 7)
    redis.call('HSET', KEYS[10], 'time', t, 'errors', ARGV[5],
               'report', ARGV[6])
    return {'OK'}
end
local st = redis.call('HMGET', KEYS[8], 'token', 'timestamp')
local r = {'OK', st[1] or '', st[2] or ''}
if op == 'items' then
    local all = redis.call('HGETALL', KEYS[7])
    for i = 1, #all do
        r[#r + 1] = all[i]
    end
end
return r
