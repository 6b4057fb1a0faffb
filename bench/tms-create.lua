-- wrk script: TMS batch-create of one tag on one of 1000 registered disks.
-- Env: TOKEN, PROJECT. Keys cycle through 5 names, so resources stay under their limit
-- and most writes are overwrites.
local token = os.getenv("TOKEN")
local project = os.getenv("PROJECT")
local counter = 0

request = function()
  counter = counter + 1
  local disk = "disk-" .. (counter * 7919 % 1000)
  local body = string.format(
    '{"project_id":"%s","resources":[{"resource_id":"%s","resource_type":"disk"}],"tags":[{"key":"k%d","value":"v%d"}]}',
    project, disk, counter % 5, counter)
  return wrk.format("POST", "/v1.0/resource-tags/batch-create",
    { ["X-Auth-Token"] = token, ["Content-Type"] = "application/json" }, body)
end

response = function(status, headers, body)
  if status ~= 200 then
    print("unexpected status " .. status .. ": " .. body)
  end
end
