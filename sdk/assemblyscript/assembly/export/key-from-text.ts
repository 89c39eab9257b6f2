// iq_key_from_text, for the function registered with keyFromText(), and the
// exports every plugin has: a plugin's entry file re-exports this module.
export { iq_abi_v1, iq_alloc, iq_init, iq_last_error } from "../index";
import { __iqKeyFromText } from "../index";

export function iq_key_from_text(ptr: usize, len: usize): i64 {
  return __iqKeyFromText(ptr, len);
}
