-- wrk script: POST pre-signed Stripe events read from a file ("<signature> <body>" per line);
-- each thread takes every Nth line so no event is sent twice while the file lasts.
local threads_total = 0
function setup(thread)
  thread:set("index", threads_total)
  threads_total = threads_total + 1
  thread:set("step", 0)
end

local requests = {}
local cursor = 0

function init(args)
  for line in io.lines(args[1]) do
    local signature, body = line:match("^(%S+) (.*)$")
    requests[#requests + 1] = wrk.format("POST", "/webhooks/stripe",
      {["Content-Type"] = "application/json", ["Stripe-Signature"] = signature}, body)
  end
  cursor = index
  step = tonumber(args[2])
end

function request()
  local r = requests[(cursor % #requests) + 1]
  cursor = cursor + step
  return r
end
