//! The C++ shim's functions (`csrc/fused_shim.cpp`), made safe: convolution's backward, a
//! gradient written into a variable's `.grad`, and `at::parallel_for` on libtorch's thread team.

use std::ffi::{CStr, c_char, c_int, c_void};
use tch::{TchError, Tensor};
use torch_sys::C_tensor;

unsafe extern "C" {
    fn rt_fused_last_error() -> *const c_char;
    fn rt_aten_cpu_capability() -> *const c_char;
    fn rt_fused_conv_backward(
        grad_out: *const C_tensor,
        input: *const C_tensor,
        weight: *const C_tensor,
        stride: i64,
        padding: i64,
        need_input: c_int,
        grad_input: *mut *mut C_tensor,
        grad_weight: *mut *mut C_tensor,
    ) -> c_int;
    fn rt_fused_accumulate_grad(var: *const C_tensor, grad: *const C_tensor) -> c_int;
    fn rt_fused_parallel_for(n: i64, grain: i64, body: extern "C" fn(*mut c_void, i64, i64), ctx: *mut c_void)
    -> c_int;
}

fn checked(rc: c_int) -> Result<(), TchError> {
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: the shim returns a NUL-terminated string owned by this thread, valid until its next call.
    let message = unsafe { CStr::from_ptr(rt_fused_last_error()) };
    Err(TchError::Torch(message.to_string_lossy().into_owned()))
}

/// The gradients of a bias-free 2-D convolution (dilation 1, one group) with respect to its input
/// (when `need_input`) and its weight, from the gradient of its output: what autograd computes.
pub fn conv_backward(
    grad_out: &Tensor,
    input: &Tensor,
    weight: &Tensor,
    stride: i64,
    padding: i64,
    need_input: bool,
) -> Result<(Option<Tensor>, Tensor), TchError> {
    let mut gi: *mut C_tensor = std::ptr::null_mut();
    let mut gw: *mut C_tensor = std::ptr::null_mut();
    // SAFETY: the three tensors outlive the call; on success the shim hands us new tensors.
    checked(unsafe {
        rt_fused_conv_backward(
            grad_out.as_ptr(),
            input.as_ptr(),
            weight.as_ptr(),
            stride,
            padding,
            c_int::from(need_input),
            &mut gi,
            &mut gw,
        )
    })?;
    // SAFETY: non-null results are tensors the shim allocated for us to own.
    let gi = (!gi.is_null()).then(|| unsafe { Tensor::from_ptr(gi) });
    Ok((gi, unsafe { Tensor::from_ptr(gw) }))
}

/// Adds `grad` into `var.grad()` in place (so a gradient that is a view into the optimizer's flat
/// buffer stays one), or makes it the gradient when `var` has none yet.
pub fn accumulate_grad(var: &Tensor, grad: &Tensor) -> Result<(), TchError> {
    // SAFETY: both tensors outlive the call.
    checked(unsafe { rt_fused_accumulate_grad(var.as_ptr(), grad.as_ptr()) })
}

/// Runs `body(begin, end)` over `0..n` in chunks of at least `grain` on libtorch's OpenMP team
/// (inline when `n <= grain` or when already inside a parallel region). A panic in `body` aborts:
/// it must not unwind through C++.
pub fn parallel_for(n: usize, grain: usize, body: &(dyn Fn(usize, usize) + Sync)) {
    extern "C" fn trampoline(ctx: *mut c_void, begin: i64, end: i64) {
        // SAFETY: ctx is the `&dyn Fn` below, alive for the whole parallel_for.
        let body = unsafe { &*(ctx as *const &(dyn Fn(usize, usize) + Sync)) };
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(begin as usize, end as usize)));
        if run.is_err() {
            std::process::abort();
        }
    }
    if n == 0 {
        return;
    }
    let mut body = body;
    let ctx = &mut body as *mut &(dyn Fn(usize, usize) + Sync) as *mut c_void;
    // SAFETY: `body` lives on this frame until at::parallel_for has joined its threads.
    let rc = unsafe { rt_fused_parallel_for(n as i64, grain.max(1) as i64, trampoline, ctx) };
    // The shim only fails if at::parallel_for itself throws (our body never does).
    if let Err(e) = checked(rc) {
        panic!("at::parallel_for failed: {e}");
    }
}

/// The vector instructions libtorch's own CPU kernels use here ("AVX512", "AVX2", "DEFAULT"),
/// as `ATEN_CPU_CAPABILITY` may cap them.
pub fn aten_cpu_capability() -> String {
    // SAFETY: the shim returns a NUL-terminated string owned by this thread, valid until its next call.
    unsafe { CStr::from_ptr(rt_aten_cpu_capability()) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn parallel_for_spreads_its_range_over_libtorchs_threads_once_each() {
        // The shim must be built with OpenMP: `at::parallel_for` is a header template, and
        // without `-fopenmp` its parallel region runs the whole range on the calling thread.
        let _threads = crate::fused::thread_count_lock();
        tch::set_num_threads(2);
        let threads = Mutex::new(HashSet::new());
        let covered = Mutex::new(vec![0u32; 64]);
        parallel_for(64, 1, &|begin, end| {
            threads.lock().unwrap().insert(std::thread::current().id());
            for i in begin..end {
                covered.lock().unwrap()[i] += 1;
            }
        });
        assert_eq!(covered.into_inner().unwrap(), vec![1; 64], "every index once");
        assert_eq!(threads.into_inner().unwrap().len(), 2, "both of libtorch's threads ran a part");
    }
}
