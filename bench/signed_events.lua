-- wrk script: POST pre-signed Stripe events read from a file ("<signature> <body>" per line).
-- Arguments: the file, the number of wrk threads, and the first line to send (1-based).
-- Thread i sends lines first+i, first+i+threads, …, so no event is sent twice; once its share
-- is spent it asks for a path that does not exist, which wrk counts as non-2xx responses.
local threads_total = 0
function setup(thread)
  thread:set("index", threads_total)
  threads_total = threads_total + 1
end

local requests = {}
local cursor = 0
local spent

function init(args)
  local threads, first = tonumber(args[2]), tonumber(args[3])
  local line_number = 0
  for line in io.lines(args[1]) do
    line_number = line_number + 1
    if line_number >= first and (line_number - first) % threads == index then
      local signature, body = line:match("^(%S+) (.*)$")
      requests[#requests + 1] = wrk.format("POST", "/webhooks/stripe",
        {["Content-Type"] = "application/json", ["Stripe-Signature"] = signature}, body)
    end
  end
  spent = wrk.format("GET", "/webhooks/stripe/no-events-left")
end

function request()
  cursor = cursor + 1
  return requests[cursor] or spent
end
