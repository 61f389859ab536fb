-- wrk script for bench/track_burst.py: each request asks for another case, from a file of
-- "case_no code" lines (TRACK_CASES names it), so the burst spreads over many cases.
-- Each wrk thread starts at its own offset and walks the list round-robin.
local cases = {}
local path_prefix = os.getenv("TRACK_PATH") or "/api/v1/track"
for line in io.lines(os.getenv("TRACK_CASES")) do
   local number, code = line:match("^(%S+)%s+(%S+)$")
   if number then
      cases[#cases + 1] = path_prefix .. "?case_no=" .. number .. "&code=" .. code
   end
end

local counter = 0
local threads = 0

function setup(thread)
   thread:set("offset", threads * 7919)
   threads = threads + 1
end

function init(args)
   counter = offset or 0
end

function request()
   counter = counter + 1
   return wrk.format("GET", cases[(counter % #cases) + 1])
end
