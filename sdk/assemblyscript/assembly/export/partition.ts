// iq_partition, for the function registered with partition(), and the exports
// every plugin has: a plugin's entry file re-exports this module.
export { iq_abi_v1, iq_alloc, iq_init, iq_last_error } from "../index";
import { __iqPartition } from "../index";

export function iq_partition(ptr: usize, len: usize, partitions: i32): i32 {
  return __iqPartition(ptr, len, partitions);
}
