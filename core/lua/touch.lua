-- Check-ins answered from configuration (UserAuthenticate, GetToken,
-- DeclarativeManagement): check the binding and record the last contact.
local refused = mdm_bind_check()
if refused then
    return refused
end
mdm_touch(KEYS[2], mdm_now())
return {'OK'}
