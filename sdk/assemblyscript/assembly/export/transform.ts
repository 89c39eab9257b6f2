// iq_transform_begin, _record and _end, for the functions registered with
// transform(), and the exports every plugin has: a plugin's entry file re-
// exports this module.
export { iq_abi_v1, iq_alloc, iq_init, iq_last_error } from "../index";
import { __iqTransformBegin, __iqTransformEnd, __iqTransformRecord } from "../index";

export function iq_transform_begin(ptr: usize, len: usize): i32 {
  return __iqTransformBegin(ptr, len);
}

export function iq_transform_record(ptr: usize, len: usize): i64 {
  return __iqTransformRecord(ptr, len);
}

export function iq_transform_end(): void {
  __iqTransformEnd();
}
