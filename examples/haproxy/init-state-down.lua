-- Keeps a container that HAProxy finds through DNS out of rotation until it answers its health
-- check. HAProxy 2.6 routes to a newly resolved server at once, before its first check (3.1 added
-- `init-state down` for this), and Docker's DNS names a container before it accepts connections:
-- without this, every new container costs failed requests. On HAProxy 3.1 or later, delete this
-- file and its `lua-load`, and add `init-state down` to `default-server` instead.
--
-- How: a server slot without an address is put into maintenance, so that when DNS fills it in it
-- stays there; once its health endpoint answers 200, it is made ready and HAProxy's own checks
-- take over.

local BACKEND = "app"
local HEALTH_PATH = "/cgi-bin/health"
local TICK_MS = 50

-- Slots this script has put into maintenance.
local parked = {}

local function answers_200(addr)
  local ip, port = addr:match("^(.+):(%d+)$")
  if not ip then
    return false
  end
  local sock = core.tcp()
  sock:settimeout(1)
  local ok = sock:connect(ip, tonumber(port))
  if ok then
    sock:send("GET " .. HEALTH_PATH .. " HTTP/1.0\r\nHost: haproxy\r\n\r\n")
    local status_line = sock:receive("*l")
    ok = status_line ~= nil and status_line:match("^HTTP/%d%.%d 200") ~= nil
  end
  sock:close()
  return ok
end

core.register_task(function()
  while true do
    for name, server in pairs(core.backends[BACKEND].servers) do
      local addr = server:get_addr()
      local resolved = addr ~= nil and addr ~= "<unknown>"
      if not resolved and not parked[name] then
        server:set_maint()
        parked[name] = true
      elseif resolved and parked[name] and answers_200(addr) then
        server:set_ready()
        parked[name] = nil
        core.Info(BACKEND .. "/" .. name .. " (" .. addr .. ") answers: into rotation")
      end
    end
    core.msleep(TICK_MS)
  end
end)
