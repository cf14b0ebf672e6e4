-- wrk script: POST one request per line of a file, in turn, then print wrk's figures as one JSON line.
--
--   wrk -t1 -c8 -d6s --timeout 60s -s benchmarks/server_load/rotate.lua http://127.0.0.1:8080 -- REQUESTS_FILE
--
-- Each line of REQUESTS_FILE is "PATH BODY": a route and its JSON body (benchmarks/server_load/wrk.py
-- writes it; JSON keeps newlines escaped, so a body is one line). Each wrk thread walks the lines from
-- its own offset, so threads do not send the same body at the same time. done() prints
-- "WRK_JSON {...}" with the request count, the duration and error counts of the run and the latency
-- percentiles (microseconds) of every answered request.

local requests_file = nil
local lines = {}
local counter = 0
local threads = 0

function setup(thread)
   thread:set("thread_number", threads)
   threads = threads + 1
end

function init(args)
   requests_file = args[1]
   if requests_file == nil then
      error("rotate.lua needs the requests file: wrk ... -s rotate.lua URL -- FILE")
   end
   for line in io.lines(requests_file) do
      local path, body = line:match("^(/%S*) (.*)$")
      if path ~= nil then
         lines[#lines + 1] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
      elseif #line > 0 then
         error("not a 'PATH BODY' line in " .. requests_file .. ": " .. line:sub(1, 80))
      end
   end
   if #lines == 0 then
      error("no requests in " .. requests_file)
   end
   counter = ((thread_number or 0) * 7919) % #lines
end

function request()
   local next_request = lines[(counter % #lines) + 1]
   counter = counter + 1
   return next_request
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d}}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
