/**
 * The schedule's calendar core (issue 15), pure: the model, which day plan a date runs, which event is
 * in force at an instant and when the next ones happen, and what is structurally wrong with a schedule.
 */
export {
  type CalendarRule,
  type DayPlanEvent,
  type Schedule,
  type ScheduleAction,
  type ScheduledChange,
  actionLabel,
  sameAction,
} from "./calendar-model.js";
export { dayPlanFor } from "./calendar-rules.js";
export { changeInForce, changesBetween, nextChange } from "./calendar-events.js";
export { scheduleProblems } from "./calendar-problems.js";
