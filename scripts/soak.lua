-- One route of `make soak` per wrk run (scripts/soak.sh drives it and reads the SOAK| line).
-- Arguments after `--`: ROUTE EXPECTED_STATUS MAX_RESPONSES_PER_THREAD RUN_ID
--   get-done   GET  /v1/scores/shop-{1..10}          computed demo subjects: 200
--   get-new    GET  /v1/scores/soak-RUN-THREAD-N     a subject never seen: 202, a new job
--   batch-get  POST /v1/scores/batch-get             shop-1..shop-10: 200
--   refresh    POST /v1/scores/shop-{11..20}/refresh 202
-- Each thread stops after MAX_RESPONSES_PER_THREAD responses (the count bound); wrk's -d is the
-- time bound. Any status other than the expected one is counted, and the first few printed.

local threads = {}
local next_thread = 1

function setup(thread)
   thread:set("thread_id", next_thread)
   next_thread = next_thread + 1
   table.insert(threads, thread)
end

-- Globals of each thread (read back by done() through thread:get).
thread_id = 0
unexpected = 0
local route, expected, cap, run
local responses, sent = 0, 0
local json = { ["Content-Type"] = "application/json" }
local batch_body = '{"subject_ids":["shop-1","shop-2","shop-3","shop-4","shop-5",'
   .. '"shop-6","shop-7","shop-8","shop-9","shop-10"]}'

function init(args)
   route, expected, cap, run = args[1], tonumber(args[2]), tonumber(args[3]), args[4]
   math.randomseed(os.time() * 100 + thread_id)
end

function request()
   sent = sent + 1
   if route == "get-done" then
      return wrk.format("GET", "/v1/scores/shop-" .. math.random(1, 10))
   elseif route == "get-new" then
      return wrk.format("GET", string.format("/v1/scores/soak-%s-%d-%d", run, thread_id, sent))
   elseif route == "batch-get" then
      return wrk.format("POST", "/v1/scores/batch-get", json, batch_body)
   elseif route == "refresh" then
      return wrk.format("POST", "/v1/scores/shop-" .. math.random(11, 20) .. "/refresh")
   end
   error("unknown route " .. tostring(route))
end

function response(status, headers, body)
   responses = responses + 1
   if status ~= expected then
      unexpected = unexpected + 1
      if unexpected <= 3 then
         io.stderr:write(string.format("%s: status %d (expected %d): %s\n", route, status, expected, (body or ""):sub(1, 200)))
      end
   end
   if responses >= cap then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local wrong = 0
   for _, thread in ipairs(threads) do
      wrong = wrong + thread:get("unexpected")
   end
   local e = summary.errors
   local socket = e.connect + e.read + e.write + e.timeout
   -- Latencies are in microseconds.
   io.write(string.format("SOAK|%d|%.1f|%.1f|%.1f|%d|%d\n", summary.requests,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      wrong, socket))
end
