-- wrk script for bench/throughput.py: every request is an InvokeEndpoint-shaped POST with
-- its own trace ID in X-Amzn-SageMaker-Custom-Attributes, as loadgen and locust send.
local counter = 0
local body = '{"features": [0.1, 0.2, 0.3]}'

request = function()
   counter = counter + 1
   local headers = {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json",
      ["X-Amzn-SageMaker-Custom-Attributes"] = "trace=" .. counter,
   }
   return wrk.format("POST", nil, headers, body)
end
