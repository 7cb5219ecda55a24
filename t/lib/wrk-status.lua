-- wrk script of the fault tests (t/lib/faultload.py): PUT signed device
-- requests in turn and tally the answers by HTTP status.
--   wrk ... -s wrk-status.lua URL -- DIR NAMES PATH CONTENT-TYPE
-- NAMES: comma-separated names of files DIR/<name>.body and .sig (the
-- Mdm-Signature header). At the end it prints two lines:
--   WRK-STATUS <status>=<count> ...
--   WRK-ERRORS connect=N read=N write=N timeout=N responses=N
-- (socket errors are requests that got no answer at all).
local threads = {}
local reqs = {}
local n = 0
statuses = {}

function setup(thread)
    table.insert(threads, thread)
end

local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

function init(args)
    local dir, names, path, ctype = args[1], args[2], args[3], args[4]
    for name in string.gmatch(names, "[^,]+") do
        reqs[#reqs + 1] = wrk.format("PUT", path, {
            ["Content-Type"] = ctype,
            ["Mdm-Signature"] = slurp(dir .. "/" .. name .. ".sig"),
        }, slurp(dir .. "/" .. name .. ".body"))
    end
end

function request()
    n = n % #reqs + 1
    return reqs[n]
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local all = {}
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("statuses")) do
            all[k] = (all[k] or 0) + v
        end
    end
    local parts = {}
    for k, v in pairs(all) do
        parts[#parts + 1] = k .. "=" .. v
    end
    table.sort(parts)
    io.write("WRK-STATUS " .. table.concat(parts, " ") .. "\n")
    local e = summary.errors
    io.write(string.format(
        "WRK-ERRORS connect=%d read=%d write=%d timeout=%d responses=%d\n",
        e.connect, e.read, e.write, e.timeout, summary.requests))
end
