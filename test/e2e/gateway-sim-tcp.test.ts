import { defineGatewaySimTests } from "./gateway-sim.js";

defineGatewaySimTests("tcp");
