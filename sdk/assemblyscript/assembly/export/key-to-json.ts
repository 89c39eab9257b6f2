// iq_key_to_json, for the function registered with keyToJson(), and the
// exports every plugin has: a plugin's entry file re-exports this module.
export { iq_abi_v1, iq_alloc, iq_init, iq_last_error } from "../index";
import { __iqKeyToJson } from "../index";

export function iq_key_to_json(ptr: usize, len: usize): i64 {
  return __iqKeyToJson(ptr, len);
}
