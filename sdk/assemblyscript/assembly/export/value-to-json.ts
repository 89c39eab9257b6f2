// iq_value_to_json, for the function registered with valueToJson(), and the
// exports every plugin has: a plugin's entry file re-exports this module.
export { iq_abi_v1, iq_alloc, iq_init, iq_last_error } from "../index";
import { __iqValueToJson } from "../index";

export function iq_value_to_json(ptr: usize, len: usize): i64 {
  return __iqValueToJson(ptr, len);
}
