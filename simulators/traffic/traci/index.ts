/** The TraCI client (SUMO's remote control protocol): see client.ts, codec.ts and sumo-process.ts. */
export { TraciClient, type TraciConnectOptions } from "./client.js";
export { TraciError, type TraciErrorKind } from "./errors.js";
export type { VehicleData } from "./codec.js";
export { startSumo, sumoEnvironment, type SumoProcess, type StartSumoOptions } from "./sumo-process.js";
