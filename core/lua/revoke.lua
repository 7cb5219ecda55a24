-- Admin: revoke the device's identity certificate. ARGV[4] is the
-- certificate's SHA-256 (hex), or empty for the one bound now. Every later
-- request with it is refused (REVOKED), Authenticate included, until the
-- device enrolls with a new certificate; the certificate stays claimed by
-- this device (Pcert:<sha256>), so no other enrollment can take it either.
-- Revoking the bound certificate also unbinds it and disables the
-- enrollment (its DER, P{D}:der, goes with it): nothing can reach the
-- device until it enrolls again.
-- Reply: {'OK', sha256} | {'UNKNOWN'} | {'NOCERT'}
if redis.call('EXISTS', KEYS[1]) == 0 then
    return {'UNKNOWN'}
end
local cur = redis.call('HGET', KEYS[1], 'cert')
local h = ARGV[4]
if h == '' then
    if not cur then
        return {'NOCERT'}
    end
    h = cur
end
redis.call('HSET', KEYS[1], 'revoked:' .. h, mdm_now())
if cur == h then
    redis.call('HDEL', KEYS[1], 'cert')
    redis.call('DEL', string.sub(KEYS[1], 1, -5) .. ':der')
    redis.call('HSET', KEYS[1], 'enabled', '0')
end
return {'OK', h}
