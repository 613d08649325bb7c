/** The corridor as a SUMO network (docs/traffic-network.md). */
export {
  ADVANCE_LOOP_M,
  buildCorridorNetwork,
  JUNCTION_RADIUS_M,
  type CorridorNetwork,
  type LoopDetector,
  NetworkBuildError,
  STOP_BAR_LOOP_M,
  VEHICLE_TYPE_ID,
} from "./build.js";
export { corridorFlows, directionOfVehicle, type Flow } from "./demand-flows.js";
export { corridorGeometry, NetworkGeometryError } from "./geometry.js";
export { type LinkRole, linkChar, signalState, type TrafficLightMap } from "./signal-state.js";
