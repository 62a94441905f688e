-- Argo CD health check for fastrollout.io/FastRollout (argocd-cm key
-- resource.customizations.health.fastrollout.io_FastRollout; see docs/gitops.md).
--   Healthy      phase Complete at the current generation
--   Progressing  no status yet, a spec change not observed yet, or phase Pending/Progressing
--   Suspended    phase Paused (spec.paused: true)
--   Degraded     phase Failed or RolledBack (the version asked for did not take)
-- Tested against the planner's own status samples by tests/unit/test_argocd_health.py.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to write a status"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local message = status.message
if message == nil or message == "" then
  message = "phase " .. status.phase
end
hs.message = message
if status.phase == "Complete" then
  hs.status = "Healthy"
elseif status.phase == "Paused" then
  hs.status = "Suspended"
elseif status.phase == "Failed" or status.phase == "RolledBack" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
