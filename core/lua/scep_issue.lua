-- SCEP: the transitions of one transaction record, each in one atomic
-- step. The signing is done before this script (it is the expensive
-- part); the script decides.
--   mode 'issue'    record a certificate that was just signed and, in
--                   dynamic mode, consume its one-time challenge: a
--                   challenge already gone means nothing is recorded and
--                   the device gets a FAILURE, so one challenge never
--                   yields two certificates
--   mode 'pend'     keep a request for the admin's approval (approval
--                   manual): its CSR, digest and nonce; the challenge is
--                   consumed now
--   mode 'approve'  record the certificate signed for a pending request,
--                   only if it is still pending and the same request
-- A transaction answered once keeps its answer: the same request again
-- (a replayed pkiMessage, or a resend with a new senderNonce) gets
-- {'EXISTS', ...} and the core answers from the record; so does another
-- request in it, except a RenewalReq with its own request and nonce
-- (key-derived transactionIDs repeat across renewals).
--   KEYS[1] challenge     KEYS[2] certificate record   KEYS[3] issued index
--   KEYS[4] revoked set   KEYS[5] transaction          KEYS[6] pending index
--   ARGV[1] 'consume' (dynamic challenge) or 'keep'
--   ARGV[2] serial (hex)  ARGV[3] subject  ARGV[4] SHA-256 of the DER
--   ARGV[5] notAfter (UNIX seconds)  ARGV[6] certificate DER
--   ARGV[7] transactionID  ARGV[8] message type (PKCSReq, RenewalReq)
--   ARGV[9] serial of the certificate that signed a RenewalReq, or ''
--   ARGV[10] seconds the transaction is kept
--   ARGV[11] mode  ARGV[12] request digest (hex)  ARGV[13] senderNonce (hex)
--   ARGV[14] the CSR (DER; 'pend' only)
-- All keys carry the {scep} hash tag: one slot.
-- Reply: {'OK'} | {'NOCHALLENGE'} | {'REVOKED'} | {'DUP'} | {'GONE'}
--        | {'EXISTS', state, request digest, senderNonce, certificate DER}
local st = redis.call('HMGET', KEYS[5], 'state', 'req', 'nonce', 'der')
if ARGV[11] == 'approve' then
    if st[1] ~= 'pending' or st[2] ~= ARGV[12] then
        return {'GONE'}
    end
elseif st[1] and st[2] then
    if st[2] == ARGV[12] or st[3] == ARGV[13] or ARGV[8] ~= 'RenewalReq' or
        st[1] == 'pending' then
        return {'EXISTS', st[1], st[2], st[3] or '', st[4] or ''}
    end
end
if ARGV[9] ~= '' and redis.call('SISMEMBER', KEYS[4], ARGV[9]) == 1 then
    return {'REVOKED'}
end
if ARGV[11] ~= 'pend' and redis.call('EXISTS', KEYS[2]) == 1 then
    return {'DUP'}
end
if ARGV[1] == 'consume' and redis.call('DEL', KEYS[1]) == 0 then
    return {'NOCHALLENGE'}
end
local t = mdm_now()
if ARGV[11] == 'pend' then
    redis.call('DEL', KEYS[5])
    redis.call('HSET', KEYS[5], 'state', 'pending', 'req', ARGV[12],
               'nonce', ARGV[13], 'kind', ARGV[8], 'subject', ARGV[3],
               'csr', ARGV[14], 'requested', t)
    redis.call('EXPIRE', KEYS[5], ARGV[10])
    redis.call('ZADD', KEYS[6], t, ARGV[7])
    return {'OK'}
end
redis.call('HSET', KEYS[2], 'subject', ARGV[3], 'sha256', ARGV[4],
           'not_after', ARGV[5], 'issued', t, 'der', ARGV[6],
           'txid', ARGV[7], 'kind', ARGV[8])
if ARGV[9] ~= '' then
    redis.call('HSET', KEYS[2], 'renewed_from', ARGV[9])
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
if ARGV[11] == 'approve' then
    redis.call('HDEL', KEYS[5], 'csr')
    redis.call('ZREM', KEYS[6], ARGV[7])
    redis.call('HSET', KEYS[5], 'state', 'issued', 'serial', ARGV[2],
               'der', ARGV[6], 'approved', t)
else
    redis.call('DEL', KEYS[5])
    redis.call('HSET', KEYS[5], 'state', 'issued', 'serial', ARGV[2],
               'der', ARGV[6], 'req', ARGV[12], 'nonce', ARGV[13],
               'kind', ARGV[8])
end
redis.call('EXPIRE', KEYS[5], ARGV[10])
return {'OK'}
