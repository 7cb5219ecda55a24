-- wrk: POST the same recorded SCEP pkiMessage (a PKCSReq) again and again
-- to the URL (.../scep?operation=PKIOperation) and sort the answers by the
-- CertRep's pkiStatus.
--   wrk -s bench/wrk-scep.lua URL -- PKIMESSAGE.der
-- done() prints one line:
--   scep: success N failure N pending N other N
-- where "other" is any answer that is not a 200 with a pkiStatus.
local threads = {}

function setup(thread)
    threads[#threads + 1] = thread
end

-- the signed attribute pkiStatus (OID 2.16.840.1.113733.1.9.3) with its
-- PrintableString value "0" (SUCCESS), "2" (FAILURE) or "3" (PENDING)
local oid = "\6\10\96\134\72\1\134\248\69\1\9\3\49\3\19\1"
local success, failure, pending = oid .. "0", oid .. "2", oid .. "3"
local req

function init(args)
    local f = assert(io.open(args[1], "rb"))
    local body = f:read("*a")
    f:close()
    req = wrk.format("POST", nil,
                     {["Content-Type"] = "application/x-pki-message"}, body)
    ok, bad, wait, other = 0, 0, 0, 0
end

function request()
    return req
end

function response(status, headers, body)
    if status ~= 200 or body == nil then
        other = other + 1
    elseif string.find(body, success, 1, true) then
        ok = ok + 1
    elseif string.find(body, failure, 1, true) then
        bad = bad + 1
    elseif string.find(body, pending, 1, true) then
        wait = wait + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local s, f, p, o = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        s = s + t:get("ok")
        f = f + t:get("bad")
        p = p + t:get("wait")
        o = o + t:get("other")
    end
    io.write(string.format("scep: success %d failure %d pending %d other %d\n",
                           s, f, p, o))
end
