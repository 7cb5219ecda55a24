-- SCEP admin: revoke a certificate this CA issued. The revoked set is what
-- RenewalReq (and later the device path) consults.
--   KEYS[1] certificate record   KEYS[2] revoked set
--   ARGV[1] serial (hex, normalised by the core)
-- Reply: {'OK'} | {'UNKNOWN'}
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {'UNKNOWN'}
end
if redis.call('HEXISTS', KEYS[1], 'revoked') == 0 then
    redis.call('HSET', KEYS[1], 'revoked', mdm_now())
end
redis.call('SADD', KEYS[2], ARGV[1])
return {'OK'}
