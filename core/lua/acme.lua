-- ACME (RFC 8555 with device-attest-01): every POST of a client runs this
-- one script, one round trip. It consumes the request's nonce, mints the
-- nonce of the answer, checks the account, then does the operation. A
-- refusal changes nothing but the two nonces.
--   KEYS[1] the request's nonce       KEYS[2] the answer's nonce
--   KEYS[3] the account (hash)        KEYS[4], KEYS[5] the operation's
--   ARGV[1] operation   ARGV[2] nonce lifetime (seconds)
--   ARGV[3] key prefix with the hash tag ('mdm:{acme}:'): an authorization
--           names its order by id, the order key is built from it
--   ARGV[4...] the operation's (below)
-- All keys carry the {acme} hash tag: one slot.
-- Replies: {'BADNONCE'} | {'NOACCT'} | {'DEACT'} | {'NOTFOUND'}
--   | {'UNAUTH'} | the operation's
local op = ARGV[1]
local used = redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
if used == 0 then
    return {'BADNONCE'}
end
local now = tonumber(mdm_now())

-- ARGV[4] the account's key thumbprint (RFC 7638), then per operation:
-- newacct: ARGV[5] JWK (RFC 7638 members, JSON)  ARGV[6] '1': only an
-- existing account  ARGV[7] contact (JSON array)
-- {'EXISTS', contact} | {'CREATED'} | {'NOACCT'}
if op == 'newacct' then
    local st = redis.call('HMGET', KEYS[3], 'status', 'contact')
    if st[1] then
        return {'EXISTS', st[2] or '[]', st[1]}
    end
    if ARGV[6] == '1' then
        return {'NOACCT'}
    end
    redis.call('HSET', KEYS[3], 'status', 'valid', 'jwk', ARGV[5],
               'contact', ARGV[7], 'created', now)
    return {'CREATED'}
end

local acct = redis.call('HMGET', KEYS[3], 'status', 'contact')
if not acct[1] then
    return {'NOACCT'}
end
if acct[1] ~= 'valid' then
    return {'DEACT'}
end
local tp = ARGV[4]

-- acct: {'OK', contact, status}
if op == 'acct' then
    return {'OK', acct[2] or '[]', acct[1]}
end

-- neworder: KEYS[4] order  KEYS[5] authorization
--   ARGV[5] identifier value  ARGV[6] order id  ARGV[7] authorization id
--   ARGV[8] token  ARGV[9] SHA-256 of the token (hex)  ARGV[10] lifetime
-- {'OK', expires}
if op == 'neworder' then
    if redis.call('EXISTS', KEYS[4]) == 1 or
        redis.call('EXISTS', KEYS[5]) == 1 then
        return {'DUP'}
    end
    local exp = now + tonumber(ARGV[10])
    redis.call('HSET', KEYS[4], 'acct', tp, 'status', 'pending',
               'ident', ARGV[5], 'authz', ARGV[7], 'expires', exp)
    redis.call('HSET', KEYS[5], 'acct', tp, 'status', 'pending',
               'ident', ARGV[5], 'order', ARGV[6], 'token', ARGV[8],
               'tokenhash', ARGV[9], 'expires', exp)
    redis.call('EXPIRE', KEYS[4], ARGV[10])
    redis.call('EXPIRE', KEYS[5], ARGV[10])
    return {'OK', tostring(exp)}
end

-- the other operations read one object the account must own
local obj = redis.call('HGETALL', KEYS[4])
if #obj == 0 then
    return {'NOTFOUND'}
end
local f = {}
for i = 1, #obj, 2 do
    f[obj[i]] = obj[i + 1]
end
if f['acct'] ~= tp then
    return {'UNAUTH'}
end

-- order, authz, cert: {'OK', field, value, ...}
if op == 'order' or op == 'authz' or op == 'cert' then
    local out = {'OK'}
    for i = 1, #obj do
        out[#out + 1] = obj[i]
    end
    return out
end

-- chall: KEYS[4] authorization
--   ARGV[5] SHA-256 of the token the attestation carries (hex)
--   ARGV[6] serial number  ARGV[7] UDID  ARGV[8] SHA-256 of the attested
--   key (hex)
-- {'OK', field, value, ...} (the authorization after) | {'BADTOKEN'}
--   | {'MISMATCH'} | {'STATE', status}
if op == 'chall' then
    if f['status'] ~= 'pending' then
        if f['status'] == 'valid' then
            local out = {'OK'}
            for i = 1, #obj do
                out[#out + 1] = obj[i]
            end
            return out
        end
        return {'STATE', f['status']}
    end
    if f['tokenhash'] ~= ARGV[5] then
        return {'BADTOKEN'}
    end
    if f['ident'] ~= ARGV[6] and f['ident'] ~= ARGV[7] then
        return {'MISMATCH'}
    end
    local okey = ARGV[3] .. 'order:' .. f['order']
    if redis.call('HGET', okey, 'status') ~= 'pending' then
        return {'STATE', 'order'}
    end
    redis.call('HSET', KEYS[4], 'status', 'valid', 'validated', now,
               'serial', ARGV[6], 'udid', ARGV[7], 'keyhash', ARGV[8])
    redis.call('HSET', okey, 'status', 'ready', 'keyhash', ARGV[8])
    return {'OK', 'status', 'valid', 'validated', tostring(now), 'ident',
            f['ident'], 'token', f['token'], 'expires', f['expires'],
            'order', f['order']}
end

-- finalize: KEYS[4] order  KEYS[5] certificate
--   ARGV[5] SHA-256 of the CSR's key (hex)  ARGV[6] identifier the
--   certificate names  ARGV[7] certificate id  ARGV[8] PEM chain
--   ARGV[9] serial (hex)  ARGV[10] lifetime of the certificate record
-- {'OK', field, value, ...} (the order after) | {'STATE', status}
--   | {'BADKEY'} | {'CHANGED'}
if op == 'finalize' then
    if f['status'] ~= 'ready' then
        return {'STATE', f['status']}
    end
    if f['keyhash'] ~= ARGV[5] then
        return {'BADKEY'}
    end
    if f['ident'] ~= ARGV[6] or ARGV[8] == '' then
        return {'CHANGED'}
    end
    redis.call('HSET', KEYS[5], 'acct', tp, 'pem', ARGV[8], 'serial',
               ARGV[9], 'order', ARGV[7], 'issued', now)
    redis.call('EXPIRE', KEYS[5], ARGV[10])
    redis.call('HSET', KEYS[4], 'status', 'valid', 'cert', ARGV[7],
               'serial', ARGV[9])
    redis.call('EXPIRE', KEYS[4], ARGV[10])
    local out = {'OK'}
    local now_obj = redis.call('HGETALL', KEYS[4])
    for i = 1, #now_obj do
        out[#out + 1] = now_obj[i]
    end
    return out
end
return redis.error_reply('acme.lua: unknown operation')
