-- wrk script used for every bench/run measurement (GET and POST alike, so
-- the per-response Lua cost on the load generator is the same everywhere).
--
-- Environment:
--   BENCH_METHOD        GET or POST (default POST)
--   BENCH_BODY_FILE     file holding the request body (trailing newlines are stripped)
--   BENCH_BODY          the body itself, used when BENCH_BODY_FILE is unset
--   BENCH_CONTENT_TYPE  default application/x-www-form-urlencoded (POST only)
--   BENCH_POOL_FILE     a file of one-shot values (authorization codes), one a line: each
--                       request takes the next one, in place of {{pool}} in the body; wrk
--                       thread k of BENCH_THREADS takes lines k, k+n, k+2n, ... When a
--                       thread's share runs out it stops (pool_exhausted in BENCHJSON) and
--                       asks for /healthz meanwhile, so no code is ever sent twice.
--
-- Counts every response whose status is not 2xx, in each wrk thread, and at
-- the end prints one machine-readable line:
--   BENCHJSON {"requests":..,"rps":..,"p50_us":..,"p99_us":..,"non2xx":..,...}

local method = os.getenv("BENCH_METHOD") or "POST"
local body_file = os.getenv("BENCH_BODY_FILE")
local body = os.getenv("BENCH_BODY")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  body = f:read("*a")
  f:close()
end
if body then
  body = string.gsub(body, "[\r\n]+$", "")
end

wrk.method = method
-- Extra headers: BENCH_HEADERS="Name: value|Other: value".
local extra = os.getenv("BENCH_HEADERS")
if extra and extra ~= "" then
  for pair in string.gmatch(extra, "[^|]+") do
    local name, value = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
    if name then
      wrk.headers[name] = value
    end
  end
end
if method ~= "GET" and method ~= "HEAD" then
  wrk.body = body or ""
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/x-www-form-urlencoded"
end

-- Main-state bookkeeping: the thread objects, so done() can read their counters.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- Per-thread pool (see BENCH_POOL_FILE).
local pool_file = os.getenv("BENCH_POOL_FILE")
local pool, pool_next = nil, 1
local body_head, body_tail = nil, nil
pool_used = 0
pool_exhausted = 0

function init(args)
  if not pool_file or pool_file == "" then return end
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  local mine = tid or 0
  pool = {}
  local i = 0
  for line in io.lines(pool_file) do
    if line ~= "" then
      if i % n == mine then table.insert(pool, line) end
      i = i + 1
    end
  end
  local at = string.find(wrk.body, "{{pool}}", 1, true)
  assert(at, "BENCH_POOL_FILE needs {{pool}} in the body")
  body_head = string.sub(wrk.body, 1, at - 1)
  body_tail = string.sub(wrk.body, at + 8)
end

if pool_file and pool_file ~= "" then
  function request()
    if pool_next > #pool then
      if pool_exhausted == 0 then
        pool_exhausted = 1
        wrk.thread:stop()
      end
      return wrk.format("GET", "/healthz", {}, nil)
    end
    local value = pool[pool_next]
    pool_next = pool_next + 1
    pool_used = pool_used + 1
    return wrk.format(nil, nil, nil, body_head .. value .. body_tail)
  end
end

-- Per-thread globals (read back with thread:get in done()).
non2xx = 0
first_bad_status = 0
first_bad_body = ""

function response(status, headers, resp_body)
  if pool_exhausted == 1 then return end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad_status == 0 then
      first_bad_status = status
      first_bad_body = string.sub(resp_body or "", 1, 300)
    end
  end
end

local function json_str(s)
  s = string.gsub(s or "", '[%c"\\]', " ")
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local bad, bad_status, bad_body = 0, 0, ""
  local used, exhausted = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    used = used + (t:get("pool_used") or 0)
    exhausted = exhausted + (t:get("pool_exhausted") or 0)
    local s = t:get("first_bad_status") or 0
    if bad_status == 0 and s ~= 0 then
      bad_status = s
      bad_body = t:get("first_bad_body") or ""
    end
  end
  local secs = summary.duration / 1e6
  local rps = 0
  if secs > 0 then rps = summary.requests / secs end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.2f,' ..
    '"mean_us":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"non2xx":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"first_bad_status":%d,"first_bad_body":%s,"pool_used":%d,"pool_exhausted":%d}\n',
    summary.requests, summary.duration, summary.bytes, rps,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    bad, e.connect, e.read, e.write, e.status, e.timeout,
    bad_status, json_str(bad_body), used, exhausted))
end
