-- SCEP: record a certificate that was just signed and, in dynamic mode,
-- consume its one-time challenge, in one atomic step. The signing is done
-- before this script (it is the expensive part); the script decides: a
-- challenge already gone means nothing is recorded and the device gets a
-- FAILURE, so one challenge never yields two certificates.
--   KEYS[1] challenge     KEYS[2] certificate record   KEYS[3] issued index
--   KEYS[4] revoked set   KEYS[5] transaction (for CertPoll)
--   ARGV[1] 'consume' (dynamic challenge) or 'keep'
--   ARGV[2] serial (hex)  ARGV[3] subject  ARGV[4] SHA-256 of the DER
--   ARGV[5] notAfter (UNIX seconds)  ARGV[6] certificate DER
--   ARGV[7] transactionID  ARGV[8] message type (PKCSReq, RenewalReq)
--   ARGV[9] serial of the certificate that signed a RenewalReq, or ''
--   ARGV[10] seconds the transaction is kept for CertPoll
-- All keys carry the {scep} hash tag: one slot.
-- Reply: {'OK'} | {'NOCHALLENGE'} | {'REVOKED'} | {'DUP'}
if ARGV[9] ~= '' and redis.call('SISMEMBER', KEYS[4], ARGV[9]) == 1 then
    return {'REVOKED'}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
    return {'DUP'}
end
if ARGV[1] == 'consume' and redis.call('DEL', KEYS[1]) == 0 then
    return {'NOCHALLENGE'}
end
local t = mdm_now()
redis.call('HSET', KEYS[2], 'subject', ARGV[3], 'sha256', ARGV[4],
           'not_after', ARGV[5], 'issued', t, 'der', ARGV[6],
           'txid', ARGV[7], 'kind', ARGV[8])
if ARGV[9] ~= '' then
    redis.call('HSET', KEYS[2], 'renewed_from', ARGV[9])
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
redis.call('HSET', KEYS[5], 'serial', ARGV[2], 'der', ARGV[6])
redis.call('EXPIRE', KEYS[5], ARGV[10])
return {'OK'}
