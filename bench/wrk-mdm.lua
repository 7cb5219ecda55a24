-- wrk: PUT signed device requests. REQS = comma-separated names of files
-- <dir>/<name>.body and .sig (made by mkrequests.py), sent in turn.
local reqs = {}
local n = 0

local function slurp(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

function init(args)
    local dir, names, path, ctype = args[1], args[2], args[3], args[4]
    for name in string.gmatch(names, "[^,]+") do
        local body = slurp(dir .. "/" .. name .. ".body")
        local sig = slurp(dir .. "/" .. name .. ".sig")
        reqs[#reqs + 1] = wrk.format("PUT", path, {
            ["Content-Type"] = ctype,
            ["Mdm-Signature"] = sig,
        }, body)
    end
end

function request()
    n = n % #reqs + 1
    return reqs[n]
end
