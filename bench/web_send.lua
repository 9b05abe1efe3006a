-- wrk script: POST a JSON send/message request; counts answers that are not "success".
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Server-API-Key"] = os.getenv("POSTAL_BENCH_KEY") or "BenchAPIKey0123456789abc"
wrk.body = '{"to":["rcpt@example.com"],"from":"Bench <bench@bench.test>","subject":"Benchmark",' ..
           '"plain_body":"Hello from wrk","html_body":"<p>Hello from wrk</p>","tag":"bench"}'

local failures = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"status":"success"', 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("failures") or 0)
  end
  io.write(string.format("non-success answers: %d\n", total))
end
