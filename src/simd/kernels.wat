;; SIMD loops for training on the wasm backend, run on the backend's own memory (imported).
;; Pointers are byte offsets; every tensor is NHWC float32 with its channel count c a multiple
;; of 4, so each v128 holds 4 channels of one pixel. Assembled by scripts/build-simd.mjs into
;; kernels-wasm.ts (the binary, base64), bound to the backend's memory by heap.ts and driven from
;; ../learn/heap-kernels.ts (training) and conv.ts (the direct convolution).
(module
  (import "env" "memory" (memory 1))

  ;; acc[k] += x[p, k] and acc[c + k] += x[p, k]^2 over `pixels` (at least 1) pixels (float32
  ;; partial sums, pixel after pixel; the caller adds them up in float64 chunk by chunk). Four
  ;; channel vectors at a time are summed in registers down the pixels (then one at a time for
  ;; the rest): sums kept in memory from pixel to pixel wait on their own store each time.
  (func (export "bn_stats") (param $x i32) (param $pixels i32) (param $c i32) (param $acc i32)
    (local $rowBytes i32) (local $k i32) (local $p i32) (local $end i32) (local $a i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $q0 v128) (local $q1 v128) (local $q2 v128) (local $q3 v128)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $k (i32.const 0))
    (block $quadsDone
      (loop $quads
        (br_if $quadsDone (i32.gt_u (i32.add (local.get $k) (i32.const 64)) (local.get $rowBytes)))
        (local.set $a (i32.add (local.get $acc) (local.get $k)))
        (local.set $s0 (v128.load (local.get $a)))
        (local.set $s1 (v128.load offset=16 (local.get $a)))
        (local.set $s2 (v128.load offset=32 (local.get $a)))
        (local.set $s3 (v128.load offset=48 (local.get $a)))
        (local.set $a (i32.add (local.get $a) (local.get $rowBytes)))
        (local.set $q0 (v128.load (local.get $a)))
        (local.set $q1 (v128.load offset=16 (local.get $a)))
        (local.set $q2 (v128.load offset=32 (local.get $a)))
        (local.set $q3 (v128.load offset=48 (local.get $a)))
        (local.set $p (i32.add (local.get $x) (local.get $k)))
        (local.set $end (i32.add (local.get $p) (i32.mul (local.get $pixels) (local.get $rowBytes))))
        (loop $pixel
          (local.set $v0 (v128.load (local.get $p)))
          (local.set $v1 (v128.load offset=16 (local.get $p)))
          (local.set $v2 (v128.load offset=32 (local.get $p)))
          (local.set $v3 (v128.load offset=48 (local.get $p)))
          (local.set $s0 (f32x4.add (local.get $s0) (local.get $v0)))
          (local.set $s1 (f32x4.add (local.get $s1) (local.get $v1)))
          (local.set $s2 (f32x4.add (local.get $s2) (local.get $v2)))
          (local.set $s3 (f32x4.add (local.get $s3) (local.get $v3)))
          (local.set $q0 (f32x4.add (local.get $q0) (f32x4.mul (local.get $v0) (local.get $v0))))
          (local.set $q1 (f32x4.add (local.get $q1) (f32x4.mul (local.get $v1) (local.get $v1))))
          (local.set $q2 (f32x4.add (local.get $q2) (f32x4.mul (local.get $v2) (local.get $v2))))
          (local.set $q3 (f32x4.add (local.get $q3) (f32x4.mul (local.get $v3) (local.get $v3))))
          (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
          (br_if $pixel (i32.lt_u (local.get $p) (local.get $end))))
        (v128.store (local.get $a) (local.get $q0))
        (v128.store offset=16 (local.get $a) (local.get $q1))
        (v128.store offset=32 (local.get $a) (local.get $q2))
        (v128.store offset=48 (local.get $a) (local.get $q3))
        (local.set $a (i32.sub (local.get $a) (local.get $rowBytes)))
        (v128.store (local.get $a) (local.get $s0))
        (v128.store offset=16 (local.get $a) (local.get $s1))
        (v128.store offset=32 (local.get $a) (local.get $s2))
        (v128.store offset=48 (local.get $a) (local.get $s3))
        (local.set $k (i32.add (local.get $k) (i32.const 64)))
        (br $quads)))
    (block $done
      (loop $single
        (br_if $done (i32.ge_u (local.get $k) (local.get $rowBytes)))
        (local.set $a (i32.add (local.get $acc) (local.get $k)))
        (local.set $s0 (v128.load (local.get $a)))
        (local.set $q0 (v128.load (i32.add (local.get $a) (local.get $rowBytes))))
        (local.set $p (i32.add (local.get $x) (local.get $k)))
        (local.set $end (i32.add (local.get $p) (i32.mul (local.get $pixels) (local.get $rowBytes))))
        (loop $pixel1
          (local.set $v0 (v128.load (local.get $p)))
          (local.set $s0 (f32x4.add (local.get $s0) (local.get $v0)))
          (local.set $q0 (f32x4.add (local.get $q0) (f32x4.mul (local.get $v0) (local.get $v0))))
          (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
          (br_if $pixel1 (i32.lt_u (local.get $p) (local.get $end))))
        (v128.store (local.get $a) (local.get $s0))
        (v128.store (i32.add (local.get $a) (local.get $rowBytes)) (local.get $q0))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $single))))

  ;; acc[k] += dz[p, k] and acc[c + k] += dz[p, k] · x[p, k] over `pixels` (at least 1) pixels, as
  ;; bn_stats sums (float32 partial sums, pixel after pixel, four channel vectors at a time).
  (func (export "bn_dz_sums") (param $x i32) (param $dz i32) (param $pixels i32) (param $c i32) (param $acc i32)
    (local $rowBytes i32) (local $k i32) (local $p i32) (local $end i32) (local $a i32) (local $dzOff i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $q0 v128) (local $q1 v128) (local $q2 v128) (local $q3 v128)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    ;; dz is addressed from x's pointer
    (local.set $dzOff (i32.sub (local.get $dz) (local.get $x)))
    (local.set $k (i32.const 0))
    (block $quadsDone
      (loop $quads
        (br_if $quadsDone (i32.gt_u (i32.add (local.get $k) (i32.const 64)) (local.get $rowBytes)))
        (local.set $a (i32.add (local.get $acc) (local.get $k)))
        (local.set $s0 (v128.load (local.get $a)))
        (local.set $s1 (v128.load offset=16 (local.get $a)))
        (local.set $s2 (v128.load offset=32 (local.get $a)))
        (local.set $s3 (v128.load offset=48 (local.get $a)))
        (local.set $a (i32.add (local.get $a) (local.get $rowBytes)))
        (local.set $q0 (v128.load (local.get $a)))
        (local.set $q1 (v128.load offset=16 (local.get $a)))
        (local.set $q2 (v128.load offset=32 (local.get $a)))
        (local.set $q3 (v128.load offset=48 (local.get $a)))
        (local.set $p (i32.add (local.get $x) (local.get $k)))
        (local.set $end (i32.add (local.get $p) (i32.mul (local.get $pixels) (local.get $rowBytes))))
        (loop $pixel
          (local.set $v0 (v128.load (i32.add (local.get $p) (local.get $dzOff))))
          (local.set $v1 (v128.load offset=16 (i32.add (local.get $p) (local.get $dzOff))))
          (local.set $v2 (v128.load offset=32 (i32.add (local.get $p) (local.get $dzOff))))
          (local.set $v3 (v128.load offset=48 (i32.add (local.get $p) (local.get $dzOff))))
          (local.set $s0 (f32x4.add (local.get $s0) (local.get $v0)))
          (local.set $s1 (f32x4.add (local.get $s1) (local.get $v1)))
          (local.set $s2 (f32x4.add (local.get $s2) (local.get $v2)))
          (local.set $s3 (f32x4.add (local.get $s3) (local.get $v3)))
          (local.set $q0 (f32x4.add (local.get $q0) (f32x4.mul (local.get $v0) (v128.load (local.get $p)))))
          (local.set $q1 (f32x4.add (local.get $q1) (f32x4.mul (local.get $v1) (v128.load offset=16 (local.get $p)))))
          (local.set $q2 (f32x4.add (local.get $q2) (f32x4.mul (local.get $v2) (v128.load offset=32 (local.get $p)))))
          (local.set $q3 (f32x4.add (local.get $q3) (f32x4.mul (local.get $v3) (v128.load offset=48 (local.get $p)))))
          (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
          (br_if $pixel (i32.lt_u (local.get $p) (local.get $end))))
        (v128.store (local.get $a) (local.get $q0))
        (v128.store offset=16 (local.get $a) (local.get $q1))
        (v128.store offset=32 (local.get $a) (local.get $q2))
        (v128.store offset=48 (local.get $a) (local.get $q3))
        (local.set $a (i32.sub (local.get $a) (local.get $rowBytes)))
        (v128.store (local.get $a) (local.get $s0))
        (v128.store offset=16 (local.get $a) (local.get $s1))
        (v128.store offset=32 (local.get $a) (local.get $s2))
        (v128.store offset=48 (local.get $a) (local.get $s3))
        (local.set $k (i32.add (local.get $k) (i32.const 64)))
        (br $quads)))
    (block $done
      (loop $single
        (br_if $done (i32.ge_u (local.get $k) (local.get $rowBytes)))
        (local.set $a (i32.add (local.get $acc) (local.get $k)))
        (local.set $s0 (v128.load (local.get $a)))
        (local.set $q0 (v128.load (i32.add (local.get $a) (local.get $rowBytes))))
        (local.set $p (i32.add (local.get $x) (local.get $k)))
        (local.set $end (i32.add (local.get $p) (i32.mul (local.get $pixels) (local.get $rowBytes))))
        (loop $pixel1
          (local.set $v0 (v128.load (i32.add (local.get $p) (local.get $dzOff))))
          (local.set $s0 (f32x4.add (local.get $s0) (local.get $v0)))
          (local.set $q0 (f32x4.add (local.get $q0) (f32x4.mul (local.get $v0) (v128.load (local.get $p)))))
          (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
          (br_if $pixel1 (i32.lt_u (local.get $p) (local.get $end))))
        (v128.store (local.get $a) (local.get $s0))
        (v128.store (i32.add (local.get $a) (local.get $rowBytes)) (local.get $q0))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $single))))

  ;; y = leaky(x * scale[k] + shift[k]) = max(z, alpha * z)  (0 <= alpha <= 1), taken with
  ;; f32x4.pmax (one instruction): z and alpha·z have the same sign, so that it gives what
  ;; f32x4.max (a NaN-aware sequence) gives, zeros and NaNs included.
  (func (export "bn_apply") (param $x i32) (param $y i32) (param $pixels i32) (param $c i32)
      (param $scale i32) (param $shift i32) (param $alpha f32)
    (local $rowBytes i32) (local $end i32) (local $k i32) (local $z v128) (local $al v128)
    (local.set $al (f32x4.splat (local.get $alpha)))
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $pixels) (local.get $rowBytes))))
    (block $done
      (loop $pixel
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $k (i32.const 0))
        (loop $channel
          (local.set $z (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $k))) (v128.load (i32.add (local.get $scale) (local.get $k))))
            (v128.load (i32.add (local.get $shift) (local.get $k)))))
          (v128.store (i32.add (local.get $y) (local.get $k)) (f32x4.pmax (local.get $z) (f32x4.mul (local.get $z) (local.get $al))))
          (local.set $k (i32.add (local.get $k) (i32.const 16)))
          (br_if $channel (i32.lt_u (local.get $k) (local.get $rowBytes))))
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $y (i32.add (local.get $y) (local.get $rowBytes)))
        (br $pixel))))

  ;; dz = dy * (z > 0 ? 1 : alpha) with z = x * scale[k] + shift[k], written to dz;
  ;; acc[k] += dz and acc[c + k] += dz * x over `pixels` (at least 1) pixels (float32 partial
  ;; sums, pixel after pixel, as in bn_stats: four channel vectors at a time in registers).
  (func (export "bn_grad_sums") (param $x i32) (param $dy i32) (param $dz i32) (param $pixels i32) (param $c i32)
      (param $scale i32) (param $shift i32) (param $alpha f32) (param $acc i32)
    (local $rowBytes i32) (local $k i32) (local $p i32) (local $end i32) (local $a i32)
    (local $dyOff i32) (local $dzOff i32) (local $sc i32) (local $sh i32)
    (local $xv v128) (local $d v128) (local $g v128) (local $al v128) (local $zero v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $q0 v128) (local $q1 v128) (local $q2 v128) (local $q3 v128)
    (local.set $al (f32x4.splat (local.get $alpha)))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    ;; dy and dz are addressed from x's pointer
    (local.set $dyOff (i32.sub (local.get $dy) (local.get $x)))
    (local.set $dzOff (i32.sub (local.get $dz) (local.get $x)))
    (local.set $k (i32.const 0))
    (block $quadsDone
      (loop $quads
        (br_if $quadsDone (i32.gt_u (i32.add (local.get $k) (i32.const 64)) (local.get $rowBytes)))
        (local.set $sc (i32.add (local.get $scale) (local.get $k)))
        (local.set $sh (i32.add (local.get $shift) (local.get $k)))
        (local.set $a (i32.add (local.get $acc) (local.get $k)))
        (local.set $s0 (v128.load (local.get $a)))
        (local.set $s1 (v128.load offset=16 (local.get $a)))
        (local.set $s2 (v128.load offset=32 (local.get $a)))
        (local.set $s3 (v128.load offset=48 (local.get $a)))
        (local.set $a (i32.add (local.get $a) (local.get $rowBytes)))
        (local.set $q0 (v128.load (local.get $a)))
        (local.set $q1 (v128.load offset=16 (local.get $a)))
        (local.set $q2 (v128.load offset=32 (local.get $a)))
        (local.set $q3 (v128.load offset=48 (local.get $a)))
        (local.set $p (i32.add (local.get $x) (local.get $k)))
        (local.set $end (i32.add (local.get $p) (i32.mul (local.get $pixels) (local.get $rowBytes))))
        (loop $pixel
          (local.set $xv (v128.load (local.get $p)))
          (local.set $d (v128.load (i32.add (local.get $p) (local.get $dyOff))))
          (local.set $g (v128.bitselect
            (local.get $d)
            (f32x4.mul (local.get $d) (local.get $al))
            (f32x4.gt
              (f32x4.add (f32x4.mul (local.get $xv) (v128.load (local.get $sc))) (v128.load (local.get $sh)))
              (local.get $zero))))
          (v128.store (i32.add (local.get $p) (local.get $dzOff)) (local.get $g))
          (local.set $s0 (f32x4.add (local.get $s0) (local.get $g)))
          (local.set $q0 (f32x4.add (local.get $q0) (f32x4.mul (local.get $g) (local.get $xv))))
          (local.set $xv (v128.load offset=16 (local.get $p)))
          (local.set $d (v128.load offset=16 (i32.add (local.get $p) (local.get $dyOff))))
          (local.set $g (v128.bitselect
            (local.get $d)
            (f32x4.mul (local.get $d) (local.get $al))
            (f32x4.gt
              (f32x4.add (f32x4.mul (local.get $xv) (v128.load offset=16 (local.get $sc))) (v128.load offset=16 (local.get $sh)))
              (local.get $zero))))
          (v128.store offset=16 (i32.add (local.get $p) (local.get $dzOff)) (local.get $g))
          (local.set $s1 (f32x4.add (local.get $s1) (local.get $g)))
          (local.set $q1 (f32x4.add (local.get $q1) (f32x4.mul (local.get $g) (local.get $xv))))
          (local.set $xv (v128.load offset=32 (local.get $p)))
          (local.set $d (v128.load offset=32 (i32.add (local.get $p) (local.get $dyOff))))
          (local.set $g (v128.bitselect
            (local.get $d)
            (f32x4.mul (local.get $d) (local.get $al))
            (f32x4.gt
              (f32x4.add (f32x4.mul (local.get $xv) (v128.load offset=32 (local.get $sc))) (v128.load offset=32 (local.get $sh)))
              (local.get $zero))))
          (v128.store offset=32 (i32.add (local.get $p) (local.get $dzOff)) (local.get $g))
          (local.set $s2 (f32x4.add (local.get $s2) (local.get $g)))
          (local.set $q2 (f32x4.add (local.get $q2) (f32x4.mul (local.get $g) (local.get $xv))))
          (local.set $xv (v128.load offset=48 (local.get $p)))
          (local.set $d (v128.load offset=48 (i32.add (local.get $p) (local.get $dyOff))))
          (local.set $g (v128.bitselect
            (local.get $d)
            (f32x4.mul (local.get $d) (local.get $al))
            (f32x4.gt
              (f32x4.add (f32x4.mul (local.get $xv) (v128.load offset=48 (local.get $sc))) (v128.load offset=48 (local.get $sh)))
              (local.get $zero))))
          (v128.store offset=48 (i32.add (local.get $p) (local.get $dzOff)) (local.get $g))
          (local.set $s3 (f32x4.add (local.get $s3) (local.get $g)))
          (local.set $q3 (f32x4.add (local.get $q3) (f32x4.mul (local.get $g) (local.get $xv))))
          (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
          (br_if $pixel (i32.lt_u (local.get $p) (local.get $end))))
        (v128.store (local.get $a) (local.get $q0))
        (v128.store offset=16 (local.get $a) (local.get $q1))
        (v128.store offset=32 (local.get $a) (local.get $q2))
        (v128.store offset=48 (local.get $a) (local.get $q3))
        (local.set $a (i32.sub (local.get $a) (local.get $rowBytes)))
        (v128.store (local.get $a) (local.get $s0))
        (v128.store offset=16 (local.get $a) (local.get $s1))
        (v128.store offset=32 (local.get $a) (local.get $s2))
        (v128.store offset=48 (local.get $a) (local.get $s3))
        (local.set $k (i32.add (local.get $k) (i32.const 64)))
        (br $quads)))
    (block $done
      (loop $single
        (br_if $done (i32.ge_u (local.get $k) (local.get $rowBytes)))
        (local.set $sc (i32.add (local.get $scale) (local.get $k)))
        (local.set $sh (i32.add (local.get $shift) (local.get $k)))
        (local.set $a (i32.add (local.get $acc) (local.get $k)))
        (local.set $s0 (v128.load (local.get $a)))
        (local.set $q0 (v128.load (i32.add (local.get $a) (local.get $rowBytes))))
        (local.set $p (i32.add (local.get $x) (local.get $k)))
        (local.set $end (i32.add (local.get $p) (i32.mul (local.get $pixels) (local.get $rowBytes))))
        (loop $pixel1
          (local.set $xv (v128.load (local.get $p)))
          (local.set $d (v128.load (i32.add (local.get $p) (local.get $dyOff))))
          (local.set $g (v128.bitselect
            (local.get $d)
            (f32x4.mul (local.get $d) (local.get $al))
            (f32x4.gt
              (f32x4.add (f32x4.mul (local.get $xv) (v128.load (local.get $sc))) (v128.load (local.get $sh)))
              (local.get $zero))))
          (v128.store (i32.add (local.get $p) (local.get $dzOff)) (local.get $g))
          (local.set $s0 (f32x4.add (local.get $s0) (local.get $g)))
          (local.set $q0 (f32x4.add (local.get $q0) (f32x4.mul (local.get $g) (local.get $xv))))
          (local.set $p (i32.add (local.get $p) (local.get $rowBytes)))
          (br_if $pixel1 (i32.lt_u (local.get $p) (local.get $end))))
        (v128.store (local.get $a) (local.get $s0))
        (v128.store (i32.add (local.get $a) (local.get $rowBytes)) (local.get $q0))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $single))))

  ;; dz = scale[k] * dz - t0[k] - x * t1[k]  (in place)
  (func (export "bn_grad_input") (param $x i32) (param $dz i32) (param $pixels i32) (param $c i32)
      (param $scale i32) (param $t0 i32) (param $t1 i32)
    (local $rowBytes i32) (local $end i32) (local $k i32) (local $p i32)
    (local.set $rowBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $pixels) (local.get $rowBytes))))
    (block $done
      (loop $pixel
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $k (i32.const 0))
        (loop $channel
          (local.set $p (i32.add (local.get $dz) (local.get $k)))
          (v128.store (local.get $p)
            (f32x4.sub
              (f32x4.sub
                (f32x4.mul (v128.load (i32.add (local.get $scale) (local.get $k))) (v128.load (local.get $p)))
                (v128.load (i32.add (local.get $t0) (local.get $k))))
              (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $k))) (v128.load (i32.add (local.get $t1) (local.get $k))))))
          (local.set $k (i32.add (local.get $k) (i32.const 16)))
          (br_if $channel (i32.lt_u (local.get $k) (local.get $rowBytes))))
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $dz (i32.add (local.get $dz) (local.get $rowBytes)))
        (br $pixel))))

  ;; MaxPoolGrad, 2x2 windows, stride 2, even h and w: each window's gradient goes to the first
  ;; position (row-major) equal to its maximum. x, dx: [n, h, w, c]; y, dy: [n, h/2, w/2, c].
  (func (export "max_pool_2x2_grad") (param $x i32) (param $y i32) (param $dy i32) (param $dx i32)
      (param $rows i32) (param $w i32) (param $c i32)
    ;; rows = n * h / 2 output rows; each covers two input rows.
    (local $rowBytes i32) (local $pixBytes i32) (local $r i32) (local $j i32) (local $k i32)
    (local $o i32) (local $i i32) (local $top v128) (local $d v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $taken v128)
    (local.set $pixBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $w) (local.get $pixBytes)))
    (local.set $r (i32.const 0))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $j (i32.const 0))
        (block $colsDone
          (loop $col
            (br_if $colsDone (i32.ge_u (local.get $j) (local.get $w)))
            (local.set $k (i32.const 0))
            (loop $channel
              (local.set $o (i32.add (local.get $y) (local.get $k)))
              (local.set $top (v128.load (local.get $o)))
              (local.set $d (v128.load (i32.add (local.get $dy) (local.get $k))))
              (local.set $i (i32.add (local.get $x) (local.get $k)))
              (local.set $m0 (f32x4.eq (v128.load (local.get $i)) (local.get $top)))
              (local.set $taken (local.get $m0))
              (local.set $m1 (v128.andnot (f32x4.eq (v128.load (i32.add (local.get $i) (local.get $pixBytes))) (local.get $top)) (local.get $taken)))
              (local.set $taken (v128.or (local.get $taken) (local.get $m1)))
              (local.set $m2 (v128.andnot (f32x4.eq (v128.load (i32.add (local.get $i) (local.get $rowBytes))) (local.get $top)) (local.get $taken)))
              (local.set $taken (v128.or (local.get $taken) (local.get $m2)))
              (local.set $i (i32.add (local.get $dx) (local.get $k)))
              (v128.store (local.get $i) (v128.and (local.get $d) (local.get $m0)))
              (v128.store (i32.add (local.get $i) (local.get $pixBytes)) (v128.and (local.get $d) (local.get $m1)))
              (v128.store (i32.add (local.get $i) (local.get $rowBytes)) (v128.and (local.get $d) (local.get $m2)))
              (v128.store (i32.add (i32.add (local.get $i) (local.get $rowBytes)) (local.get $pixBytes)) (v128.andnot (local.get $d) (local.get $taken)))
              (local.set $k (i32.add (local.get $k) (i32.const 16)))
              (br_if $channel (i32.lt_u (local.get $k) (local.get $pixBytes))))
            ;; next window: two input pixels, one output pixel
            (local.set $x (i32.add (local.get $x) (i32.shl (local.get $pixBytes) (i32.const 1))))
            (local.set $dx (i32.add (local.get $dx) (i32.shl (local.get $pixBytes) (i32.const 1))))
            (local.set $y (i32.add (local.get $y) (local.get $pixBytes)))
            (local.set $dy (i32.add (local.get $dy) (local.get $pixBytes)))
            (local.set $j (i32.add (local.get $j) (i32.const 2)))
            (br $col)))
        ;; skip the second input row of this window row
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $dx (i32.add (local.get $dx) (local.get $rowBytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))
  ;; 2x2 max pool with stride 2 on an even-sized NHWC input, c channels (a multiple of 4):
  ;; rows = n * h / 2 output rows, each the maximum of two input rows by two columns.
  (func (export "max_pool_2x2") (param $x i32) (param $y i32) (param $rows i32) (param $w i32) (param $c i32)
    (local $rowBytes i32) (local $pixBytes i32) (local $r i32) (local $j i32) (local $k i32) (local $i i32)
    (local.set $pixBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $w) (local.get $pixBytes)))
    (local.set $r (i32.const 0))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $j (i32.const 0))
        (block $colsDone
          (loop $col
            (br_if $colsDone (i32.ge_u (local.get $j) (local.get $w)))
            (local.set $k (i32.const 0))
            (loop $channel
              (local.set $i (i32.add (local.get $x) (local.get $k)))
              (v128.store (i32.add (local.get $y) (local.get $k))
                (f32x4.max
                  (f32x4.max (v128.load (local.get $i)) (v128.load (i32.add (local.get $i) (local.get $pixBytes))))
                  (f32x4.max
                    (v128.load (i32.add (local.get $i) (local.get $rowBytes)))
                    (v128.load (i32.add (i32.add (local.get $i) (local.get $rowBytes)) (local.get $pixBytes))))))
              (local.set $k (i32.add (local.get $k) (i32.const 16)))
              (br_if $channel (i32.lt_u (local.get $k) (local.get $pixBytes))))
            ;; next window: two input pixels, one output pixel
            (local.set $x (i32.add (local.get $x) (i32.shl (local.get $pixBytes) (i32.const 1))))
            (local.set $y (i32.add (local.get $y) (local.get $pixBytes)))
            (local.set $j (i32.add (local.get $j) (i32.const 2)))
            (br $col)))
        ;; skip the second input row of this window row
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; bn_apply then the 2x2 max pool of max_pool_2x2 in one pass: y[window] = max of leaky(x · scale[k]
  ;; + shift[k]) over the window's four pixels, the same values bn_apply and max_pool_2x2 give in
  ;; turn (the leaky ReLU with pmax, as in bn_apply), without the full-size activation.
  ;; rows = n · h / 2 window rows; y: [n, h/2, w/2, c].
  (func (export "bn_apply_pool") (param $x i32) (param $y i32) (param $rows i32) (param $w i32) (param $c i32)
      (param $scale i32) (param $shift i32) (param $alpha f32)
    (local $rowBytes i32) (local $pixBytes i32) (local $r i32) (local $j i32) (local $k i32) (local $i i32)
    (local $sc v128) (local $sh v128) (local $al v128) (local $z0 v128) (local $z1 v128) (local $z2 v128) (local $z3 v128)
    (local.set $al (f32x4.splat (local.get $alpha)))
    (local.set $pixBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $w) (local.get $pixBytes)))
    (local.set $r (i32.const 0))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $j (i32.const 0))
        (block $colsDone
          (loop $col
            (br_if $colsDone (i32.ge_u (local.get $j) (local.get $w)))
            (local.set $k (i32.const 0))
            (loop $channel
              (local.set $sc (v128.load (i32.add (local.get $scale) (local.get $k))))
              (local.set $sh (v128.load (i32.add (local.get $shift) (local.get $k))))
              (local.set $i (i32.add (local.get $x) (local.get $k)))
              (local.set $z0 (f32x4.add (f32x4.mul (v128.load (local.get $i)) (local.get $sc)) (local.get $sh)))
              (local.set $z1 (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $i) (local.get $pixBytes))) (local.get $sc)) (local.get $sh)))
              (local.set $i (i32.add (local.get $i) (local.get $rowBytes)))
              (local.set $z2 (f32x4.add (f32x4.mul (v128.load (local.get $i)) (local.get $sc)) (local.get $sh)))
              (local.set $z3 (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $i) (local.get $pixBytes))) (local.get $sc)) (local.get $sh)))
              (v128.store (i32.add (local.get $y) (local.get $k))
                (f32x4.max
                  (f32x4.max (f32x4.pmax (local.get $z0) (f32x4.mul (local.get $z0) (local.get $al)))
                             (f32x4.pmax (local.get $z1) (f32x4.mul (local.get $z1) (local.get $al))))
                  (f32x4.max (f32x4.pmax (local.get $z2) (f32x4.mul (local.get $z2) (local.get $al)))
                             (f32x4.pmax (local.get $z3) (f32x4.mul (local.get $z3) (local.get $al))))))
              (local.set $k (i32.add (local.get $k) (i32.const 16)))
              (br_if $channel (i32.lt_u (local.get $k) (local.get $pixBytes))))
            ;; next window: two input pixels, one output pixel
            (local.set $x (i32.add (local.get $x) (i32.shl (local.get $pixBytes) (i32.const 1))))
            (local.set $y (i32.add (local.get $y) (local.get $pixBytes)))
            (local.set $j (i32.add (local.get $j) (i32.const 2)))
            (br $col)))
        ;; skip the second input row of this window row
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; The backward of bn_apply_pool as far as the leaky ReLU: each window's pooled gradient dy goes
  ;; to the first pixel (row-major) whose activation equals the window's maximum, as
  ;; max_pool_2x2_grad routes it. The activations are computed again from x with the forward
  ;; pass's own ascale and ashift, so that they are bit for bit those bn_apply_pool compared.
  ;; Then through the leaky ReLU as bn_grad_sums takes it: dz = dy' · (x · scale + shift > 0 ?
  ;; 1 : alpha) for every pixel, written to dz [n, h, w, c]. bn_dz_sums then takes the batch-norm
  ;; sums of dz. f32x4.pmax (one instruction) stands for f32x4.max (a NaN-aware sequence):
  ;; without NaNs they differ only in the sign of a zero maximum, which the equality tests do not see.
  (func (export "bn_pool_grad") (param $x i32) (param $dy i32) (param $dz i32) (param $rows i32) (param $w i32) (param $c i32)
      (param $ascale i32) (param $ashift i32) (param $scale i32) (param $shift i32) (param $alpha f32)
    (local $rowBytes i32) (local $pixBytes i32) (local $r i32) (local $j i32) (local $k i32) (local $i i32) (local $o i32)
    (local $sc v128) (local $sh v128) (local $al v128) (local $zero v128) (local $d v128) (local $top v128) (local $taken v128) (local $m v128)
    (local $g0 v128) (local $g1 v128) (local $g2 v128) (local $g3 v128)
    (local.set $al (f32x4.splat (local.get $alpha)))
    (local.set $zero (f32x4.splat (f32.const 0)))
    (local.set $pixBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $w) (local.get $pixBytes)))
    (local.set $r (i32.const 0))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $j (i32.const 0))
        (block $colsDone
          (loop $col
            (br_if $colsDone (i32.ge_u (local.get $j) (local.get $w)))
            (local.set $k (i32.const 0))
            (loop $channel
              (local.set $sc (v128.load (i32.add (local.get $ascale) (local.get $k))))
              (local.set $sh (v128.load (i32.add (local.get $ashift) (local.get $k))))
              ;; the forward pass's activations g, and their maximum
              (local.set $i (i32.add (local.get $x) (local.get $k)))
              (local.set $g0 (f32x4.add (f32x4.mul (v128.load (local.get $i)) (local.get $sc)) (local.get $sh)))
              (local.set $g1 (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $i) (local.get $pixBytes))) (local.get $sc)) (local.get $sh)))
              (local.set $i (i32.add (local.get $i) (local.get $rowBytes)))
              (local.set $g2 (f32x4.add (f32x4.mul (v128.load (local.get $i)) (local.get $sc)) (local.get $sh)))
              (local.set $g3 (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $i) (local.get $pixBytes))) (local.get $sc)) (local.get $sh)))
              (local.set $g0 (f32x4.pmax (local.get $g0) (f32x4.mul (local.get $g0) (local.get $al))))
              (local.set $g1 (f32x4.pmax (local.get $g1) (f32x4.mul (local.get $g1) (local.get $al))))
              (local.set $g2 (f32x4.pmax (local.get $g2) (f32x4.mul (local.get $g2) (local.get $al))))
              (local.set $g3 (f32x4.pmax (local.get $g3) (f32x4.mul (local.get $g3) (local.get $al))))
              (local.set $top (f32x4.pmax (f32x4.pmax (local.get $g0) (local.get $g1)) (f32x4.pmax (local.get $g2) (local.get $g3))))
              ;; pixel by pixel: its share of dy (all of it for the first pixel equal to the
              ;; maximum, none for the others), through the leaky ReLU at this pass's
              ;; pre-activation p; g becomes that gradient
              (local.set $sc (v128.load (i32.add (local.get $scale) (local.get $k))))
              (local.set $sh (v128.load (i32.add (local.get $shift) (local.get $k))))
              (local.set $i (i32.add (local.get $x) (local.get $k)))
              (local.set $d (v128.load (i32.add (local.get $dy) (local.get $k))))
              (local.set $taken (f32x4.eq (local.get $g0) (local.get $top)))
              (local.set $m (v128.and (local.get $d) (local.get $taken)))
              (local.set $g0 (v128.bitselect (local.get $m) (f32x4.mul (local.get $m) (local.get $al)) (f32x4.gt (f32x4.add (f32x4.mul (v128.load (local.get $i)) (local.get $sc)) (local.get $sh)) (local.get $zero))))
              (local.set $m (v128.andnot (f32x4.eq (local.get $g1) (local.get $top)) (local.get $taken)))
              (local.set $taken (v128.or (local.get $taken) (local.get $m)))
              (local.set $m (v128.and (local.get $d) (local.get $m)))
              (local.set $g1 (v128.bitselect (local.get $m) (f32x4.mul (local.get $m) (local.get $al)) (f32x4.gt (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $i) (local.get $pixBytes))) (local.get $sc)) (local.get $sh)) (local.get $zero))))
              (local.set $m (v128.andnot (f32x4.eq (local.get $g2) (local.get $top)) (local.get $taken)))
              (local.set $taken (v128.or (local.get $taken) (local.get $m)))
              (local.set $m (v128.and (local.get $d) (local.get $m)))
              (local.set $g2 (v128.bitselect (local.get $m) (f32x4.mul (local.get $m) (local.get $al)) (f32x4.gt (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $i) (local.get $rowBytes))) (local.get $sc)) (local.get $sh)) (local.get $zero))))
              (local.set $m (v128.andnot (local.get $d) (local.get $taken)))
              (local.set $g3 (v128.bitselect (local.get $m) (f32x4.mul (local.get $m) (local.get $al)) (f32x4.gt (f32x4.add (f32x4.mul (v128.load (i32.add (i32.add (local.get $i) (local.get $rowBytes)) (local.get $pixBytes))) (local.get $sc)) (local.get $sh)) (local.get $zero))))
              (local.set $o (i32.add (local.get $dz) (local.get $k)))
              (v128.store (local.get $o) (local.get $g0))
              (v128.store (i32.add (local.get $o) (local.get $pixBytes)) (local.get $g1))
              (local.set $o (i32.add (local.get $o) (local.get $rowBytes)))
              (v128.store (local.get $o) (local.get $g2))
              (v128.store (i32.add (local.get $o) (local.get $pixBytes)) (local.get $g3))
              (local.set $k (i32.add (local.get $k) (i32.const 16)))
              (br_if $channel (i32.lt_u (local.get $k) (local.get $pixBytes))))
            ;; next window: two input pixels, one output pixel
            (local.set $x (i32.add (local.get $x) (i32.shl (local.get $pixBytes) (i32.const 1))))
            (local.set $dz (i32.add (local.get $dz) (i32.shl (local.get $pixBytes) (i32.const 1))))
            (local.set $dy (i32.add (local.get $dy) (local.get $pixBytes)))
            (local.set $j (i32.add (local.get $j) (i32.const 2)))
            (br $col)))
        ;; skip the second input row of this window row
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $dz (i32.add (local.get $dz) (local.get $rowBytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row))))

  ;; Adam step for n values: m = b1·m + (1 − b1)·g, v = b2·v + (1 − b2)·g², in place, and
  ;; wOut = w − lr·(m·c1) / (√(v·c2) + eps) with c1 = 1/(1 − b1^t), c2 = 1/(1 − b2^t), as tfjs's Adam.
  (func (export "adam") (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $wOut i32) (param $n i32)
      (param $lr f32) (param $b1 f32) (param $b2 f32) (param $eps f32) (param $c1 f32) (param $c2 f32)
    (local $end i32) (local $vecEnd i32) (local $gv v128) (local $mv v128) (local $vv v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $vecEnd (i32.add (local.get $w) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $vecDone
      (loop $vec
        (br_if $vecDone (i32.ge_u (local.get $w) (local.get $vecEnd)))
        (local.set $gv (v128.load (local.get $g)))
        (local.set $mv (f32x4.add (f32x4.mul (v128.load (local.get $m)) (f32x4.splat (local.get $b1)))
                                  (f32x4.mul (local.get $gv) (f32x4.splat (f32.sub (f32.const 1) (local.get $b1))))))
        (local.set $vv (f32x4.add (f32x4.mul (v128.load (local.get $v)) (f32x4.splat (local.get $b2)))
                                  (f32x4.mul (f32x4.mul (local.get $gv) (local.get $gv)) (f32x4.splat (f32.sub (f32.const 1) (local.get $b2))))))
        (v128.store (local.get $m) (local.get $mv))
        (v128.store (local.get $v) (local.get $vv))
        (v128.store (local.get $wOut)
          (f32x4.sub (v128.load (local.get $w))
            (f32x4.mul (f32x4.splat (local.get $lr))
              (f32x4.div (f32x4.mul (local.get $mv) (f32x4.splat (local.get $c1)))
                         (f32x4.add (f32x4.sqrt (f32x4.mul (local.get $vv) (f32x4.splat (local.get $c2)))) (f32x4.splat (local.get $eps)))))))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const 16)))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (local.set $wOut (i32.add (local.get $wOut) (i32.const 16)))
        (br $vec)))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $w) (local.get $end)))
        (local.set $gs (f32.load (local.get $g)))
        (local.set $ms (f32.add (f32.mul (f32.load (local.get $m)) (local.get $b1)) (f32.mul (local.get $gs) (f32.sub (f32.const 1) (local.get $b1)))))
        (local.set $vs (f32.add (f32.mul (f32.load (local.get $v)) (local.get $b2)) (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (f32.sub (f32.const 1) (local.get $b2)))))
        (f32.store (local.get $m) (local.get $ms))
        (f32.store (local.get $v) (local.get $vs))
        (f32.store (local.get $wOut)
          (f32.sub (f32.load (local.get $w))
            (f32.mul (local.get $lr)
              (f32.div (f32.mul (local.get $ms) (local.get $c1))
                       (f32.add (f32.sqrt (f32.mul (local.get $vs) (local.get $c2))) (local.get $eps))))))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (local.set $g (i32.add (local.get $g) (i32.const 4)))
        (local.set $m (i32.add (local.get $m) (i32.const 4)))
        (local.set $v (i32.add (local.get $v) (i32.const 4)))
        (local.set $wOut (i32.add (local.get $wOut) (i32.const 4)))
        (br $tail))))

  ;; Filter gradient of a stride-1 convolution, NHWC, without any copy or transpose:
  ;;   dw[a, b, i, o] = Σ over images and output pixels (y, x) of x[img, y + a − padTop, x + b − padLeft, i] · dy[img, y, x, o]
  ;; (terms outside the input are zero padding). Register tiles of 4 input × 8 output channels
  ;; (ci a multiple of 4, co of 8). The output rows are taken `rows` at a time, image by image,
  ;; and every tile of every tap is accumulated over that block before the next: the block's
  ;; rows of x and dy stay in cache while they are read kh·kw·(ci/4)·(co/8) times, where one
  ;; pass over all pixels per tile streamed the whole of x and dy from memory each time. The
  ;; tiles' sums live in dw between blocks (zeroed first); dw is written, not added to.
  (func (export "conv_filter_grad") (param $x i32) (param $dy i32) (param $dw i32)
      (param $n i32) (param $h i32) (param $w i32) (param $ci i32) (param $ho i32) (param $wo i32) (param $co i32)
      (param $kh i32) (param $kw i32) (param $padTop i32) (param $padLeft i32) (param $rows i32)
    (local $a i32) (local $b i32) (local $i0 i32) (local $o0 i32) (local $img i32) (local $y i32) (local $xx i32)
    (local $y0 i32) (local $y1 i32)
    (local $yLo i32) (local $yHi i32) (local $xLo i32) (local $xHi i32)
    (local $xp i32) (local $dp i32) (local $xStep i32) (local $dStep i32) (local $out i32) (local $end i32)
    (local $d0 v128) (local $d1 v128) (local $s v128)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local.set $xStep (i32.shl (local.get $ci) (i32.const 2)))
    (local.set $dStep (i32.shl (local.get $co) (i32.const 2)))
    ;; dw = 0 (kh·kw·ci·co floats, a multiple of 8)
    (local.set $out (local.get $dw))
    (local.set $end (i32.add (local.get $dw) (i32.shl (i32.mul (i32.mul (i32.mul (local.get $kh) (local.get $kw)) (local.get $ci)) (local.get $co)) (i32.const 2))))
    (block $zeroDone
      (loop $zero
        (br_if $zeroDone (i32.ge_u (local.get $out) (local.get $end)))
        (v128.store (local.get $out) (v128.const i32x4 0 0 0 0))
        (v128.store offset=16 (local.get $out) (v128.const i32x4 0 0 0 0))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (br $zero)))
    (local.set $img (i32.const 0))
    (block $imgDone
      (loop $imgLoop
        (br_if $imgDone (i32.ge_u (local.get $img) (local.get $n)))
        (local.set $y0 (i32.const 0))
        (block $blockDone
          (loop $blockLoop
            (br_if $blockDone (i32.ge_s (local.get $y0) (local.get $ho)))
            (local.set $y1 (i32.add (local.get $y0) (local.get $rows)))
            (if (i32.gt_s (local.get $y1) (local.get $ho)) (then (local.set $y1 (local.get $ho))))
            (local.set $a (i32.const 0))
            (loop $aLoop
              ;; rows y of this block whose input row y + a − padTop lies inside [0, h)
              (local.set $yLo (i32.sub (local.get $padTop) (local.get $a)))
              (if (i32.lt_s (local.get $yLo) (local.get $y0)) (then (local.set $yLo (local.get $y0))))
              (local.set $yHi (i32.sub (i32.add (local.get $h) (local.get $padTop)) (local.get $a)))
              (if (i32.gt_s (local.get $yHi) (local.get $y1)) (then (local.set $yHi (local.get $y1))))
              (if (i32.lt_s (local.get $yLo) (local.get $yHi)) (then
              (local.set $b (i32.const 0))
              (loop $bLoop
                (local.set $xLo (select (i32.sub (local.get $padLeft) (local.get $b)) (i32.const 0) (i32.gt_s (i32.sub (local.get $padLeft) (local.get $b)) (i32.const 0))))
                (local.set $xHi (i32.sub (i32.add (local.get $w) (local.get $padLeft)) (local.get $b)))
                (if (i32.gt_s (local.get $xHi) (local.get $wo)) (then (local.set $xHi (local.get $wo))))
                (local.set $i0 (i32.const 0))
                (loop $iLoop
                  (local.set $o0 (i32.const 0))
                  (loop $oLoop
                    ;; the tile dw[a, b, i0 .. i0 + 4, o0 .. o0 + 8] so far
                    (local.set $out (i32.add (local.get $dw) (i32.shl
                      (i32.add (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $a) (local.get $kw)) (local.get $b)) (local.get $ci)) (local.get $i0)) (local.get $co)) (local.get $o0))
                      (i32.const 2))))
                    (local.set $a00 (v128.load (local.get $out)))
                    (local.set $a01 (v128.load offset=16 (local.get $out)))
                    (local.set $a10 (v128.load (i32.add (local.get $out) (local.get $dStep))))
                    (local.set $a11 (v128.load offset=16 (i32.add (local.get $out) (local.get $dStep))))
                    (local.set $a20 (v128.load (i32.add (local.get $out) (i32.shl (local.get $dStep) (i32.const 1)))))
                    (local.set $a21 (v128.load offset=16 (i32.add (local.get $out) (i32.shl (local.get $dStep) (i32.const 1)))))
                    (local.set $a30 (v128.load (i32.add (local.get $out) (i32.mul (local.get $dStep) (i32.const 3)))))
                    (local.set $a31 (v128.load offset=16 (i32.add (local.get $out) (i32.mul (local.get $dStep) (i32.const 3)))))
                    (local.set $y (local.get $yLo))
                    (loop $yLoop
                      ;; first pixel of this row run in x and in dy
                      (local.set $xp (i32.add (local.get $x) (i32.shl
                        (i32.add (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $img) (local.get $h))
                          (i32.sub (i32.add (local.get $y) (local.get $a)) (local.get $padTop))) (local.get $w))
                          (i32.sub (i32.add (local.get $xLo) (local.get $b)) (local.get $padLeft))) (local.get $ci)) (local.get $i0))
                        (i32.const 2))))
                      (local.set $dp (i32.add (local.get $dy) (i32.shl
                        (i32.add (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $img) (local.get $ho)) (local.get $y)) (local.get $wo)) (local.get $xLo)) (local.get $co)) (local.get $o0))
                        (i32.const 2))))
                      (local.set $xx (local.get $xLo))
                      (block $xDone
                        (loop $xLoop
                          (br_if $xDone (i32.ge_s (local.get $xx) (local.get $xHi)))
                          (local.set $d0 (v128.load (local.get $dp)))
                          (local.set $d1 (v128.load offset=16 (local.get $dp)))
                          (local.set $s (v128.load32_splat (local.get $xp)))
                          (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $s) (local.get $d0))))
                          (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $s) (local.get $d1))))
                          (local.set $s (v128.load32_splat offset=4 (local.get $xp)))
                          (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $s) (local.get $d0))))
                          (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $s) (local.get $d1))))
                          (local.set $s (v128.load32_splat offset=8 (local.get $xp)))
                          (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $s) (local.get $d0))))
                          (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $s) (local.get $d1))))
                          (local.set $s (v128.load32_splat offset=12 (local.get $xp)))
                          (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $s) (local.get $d0))))
                          (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $s) (local.get $d1))))
                          (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                          (local.set $dp (i32.add (local.get $dp) (local.get $dStep)))
                          (local.set $xx (i32.add (local.get $xx) (i32.const 1)))
                          (br $xLoop)))
                      (local.set $y (i32.add (local.get $y) (i32.const 1)))
                      (br_if $yLoop (i32.lt_s (local.get $y) (local.get $yHi))))
                    (v128.store (local.get $out) (local.get $a00))
                    (v128.store offset=16 (local.get $out) (local.get $a01))
                    (local.set $out (i32.add (local.get $out) (local.get $dStep)))
                    (v128.store (local.get $out) (local.get $a10))
                    (v128.store offset=16 (local.get $out) (local.get $a11))
                    (local.set $out (i32.add (local.get $out) (local.get $dStep)))
                    (v128.store (local.get $out) (local.get $a20))
                    (v128.store offset=16 (local.get $out) (local.get $a21))
                    (local.set $out (i32.add (local.get $out) (local.get $dStep)))
                    (v128.store (local.get $out) (local.get $a30))
                    (v128.store offset=16 (local.get $out) (local.get $a31))
                    (local.set $o0 (i32.add (local.get $o0) (i32.const 8)))
                    (br_if $oLoop (i32.lt_u (local.get $o0) (local.get $co))))
                  (local.set $i0 (i32.add (local.get $i0) (i32.const 4)))
                  (br_if $iLoop (i32.lt_u (local.get $i0) (local.get $ci))))
                (local.set $b (i32.add (local.get $b) (i32.const 1)))
                (br_if $bLoop (i32.lt_u (local.get $b) (local.get $kw))))))
              (local.set $a (i32.add (local.get $a) (i32.const 1)))
              (br_if $aLoop (i32.lt_u (local.get $a) (local.get $kh))))
            (local.set $y0 (local.get $y1))
            (br $blockLoop)))
        (local.set $img (i32.add (local.get $img) (i32.const 1)))
        (br $imgLoop))))

  ;; Forward convolution, stride 1, NHWC, as a direct loop:
  ;;   out[img, y, x, o] = Σ over a, b, i of x[img, y + a − padTop, x + b − padLeft, i] · w[a, b, i, o]
  ;; (terms outside the input are zero padding). Register tiles of 4 neighbouring output pixels ×
  ;; 8 output channels (co a multiple of 8, wo at least 4; any ci), summed over every tap and input
  ;; channel; the last tile of a row overlaps the one before it (its pixels are written twice,
  ;; with the same values). A tap column outside the input reads `zero` (ci zero floats) instead.
  ;; Output channels are the outermost loop, so that one tile's filter slice stays in cache while
  ;; every pixel is computed; the filter comes packed by pack_filter, so that a tile's weights
  ;; are read in order, 32 bytes at a time. Then, as the daemon's folded layers need: plus bias[o] when `bias` is
  ;; not 0, and leaky ReLU max(z, alpha·z) when alpha < 1 (0: ReLU; 1: none).
  (func (export "conv_forward") (param $x i32) (param $w i32) (param $out i32) (param $zero i32)
      (param $n i32) (param $h i32) (param $wd i32) (param $ci i32) (param $ho i32) (param $wo i32) (param $co i32)
      (param $kh i32) (param $kw i32) (param $padTop i32) (param $padLeft i32) (param $bias i32) (param $alpha f32)
    (local $o0 i32) (local $img i32) (local $y i32) (local $x0 i32) (local $xs i32) (local $a i32) (local $b i32)
    (local $iy i32) (local $col i32) (local $row i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $wp i32) (local $k i32)
    (local $xStep i32) (local $oStep i32) (local $ciBytes i32) (local $dst i32) (local $end i32)
    (local $w0 v128) (local $w1 v128) (local $s v128) (local $b0 v128) (local $b1 v128) (local $al v128) (local $act i32)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local.set $xStep (i32.shl (local.get $ci) (i32.const 2)))
    (local.set $ciBytes (local.get $xStep))
    (local.set $al (f32x4.splat (local.get $alpha)))
    (local.set $act (f32.lt (local.get $alpha) (f32.const 1)))
    (local.set $oStep (i32.shl (local.get $co) (i32.const 2)))
    (local.set $o0 (i32.const 0))
    (loop $oLoop
      (local.set $img (i32.const 0))
      (loop $imgLoop
        (local.set $y (i32.const 0))
        (loop $yLoop
          (local.set $x0 (i32.const 0))
          (loop $xLoop
            ;; the tile's first pixel: x0, or wo − 4 for the last tile of the row
            (local.set $xs (local.get $x0))
            (if (i32.gt_s (local.get $xs) (i32.sub (local.get $wo) (i32.const 4)))
              (then (local.set $xs (i32.sub (local.get $wo) (i32.const 4)))))
            (local.set $a00 (v128.const i32x4 0 0 0 0)) (local.set $a01 (v128.const i32x4 0 0 0 0))
            (local.set $a10 (v128.const i32x4 0 0 0 0)) (local.set $a11 (v128.const i32x4 0 0 0 0))
            (local.set $a20 (v128.const i32x4 0 0 0 0)) (local.set $a21 (v128.const i32x4 0 0 0 0))
            (local.set $a30 (v128.const i32x4 0 0 0 0)) (local.set $a31 (v128.const i32x4 0 0 0 0))
            (local.set $a (i32.const 0))
            (loop $aLoop
              (local.set $iy (i32.sub (i32.add (local.get $y) (local.get $a)) (local.get $padTop)))
              (if (i32.lt_u (local.get $iy) (local.get $h)) (then
                ;; byte offset of input row iy of this image
                (local.set $row (i32.add (local.get $x) (i32.mul
                  (i32.mul (i32.add (i32.mul (local.get $img) (local.get $h)) (local.get $iy)) (local.get $wd))
                  (local.get $xStep))))
                (local.set $col (i32.sub (local.get $xs) (local.get $padLeft)))
                (if (i32.and (i32.ge_s (local.get $col) (i32.const 0))
                      (i32.le_s (i32.add (local.get $col) (i32.add (local.get $kw) (i32.const 3))) (local.get $wd)))
                  (then
                    ;; The whole tap row lies inside the input: for each pixel, its kw taps × ci
                    ;; channels are one run of memory, as are their packed weights, so the kw taps
                    ;; of the row are one pass of the inner loop (kw·ci long instead of ci).
                    (local.set $p0 (i32.add (local.get $row) (i32.mul (local.get $col) (local.get $xStep))))
                    (local.set $p1 (i32.add (local.get $p0) (local.get $xStep)))
                    (local.set $p2 (i32.add (local.get $p1) (local.get $xStep)))
                    (local.set $p3 (i32.add (local.get $p2) (local.get $xStep)))
                    (local.set $wp (i32.add (local.get $w) (i32.shl
                      (i32.add (i32.mul (local.get $o0) (i32.mul (i32.mul (local.get $kh) (local.get $kw)) (local.get $ci)))
                        (i32.shl (i32.mul (i32.mul (local.get $a) (local.get $kw)) (local.get $ci)) (i32.const 3)))
                      (i32.const 2))))
                    (local.set $end (i32.mul (local.get $kw) (local.get $ciBytes)))
                    (local.set $k (i32.const 0))
                    (loop $rLoop
                      (local.set $w0 (v128.load (local.get $wp)))
                      (local.set $w1 (v128.load offset=16 (local.get $wp)))
                      (local.set $s (v128.load32_splat (i32.add (local.get $p0) (local.get $k))))
                      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $s) (local.get $w0))))
                      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $s) (local.get $w1))))
                      (local.set $s (v128.load32_splat (i32.add (local.get $p1) (local.get $k))))
                      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $s) (local.get $w0))))
                      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $s) (local.get $w1))))
                      (local.set $s (v128.load32_splat (i32.add (local.get $p2) (local.get $k))))
                      (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $s) (local.get $w0))))
                      (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $s) (local.get $w1))))
                      (local.set $s (v128.load32_splat (i32.add (local.get $p3) (local.get $k))))
                      (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $s) (local.get $w0))))
                      (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $s) (local.get $w1))))
                      (local.set $wp (i32.add (local.get $wp) (i32.const 32)))
                      (local.set $k (i32.add (local.get $k) (i32.const 4)))
                      (br_if $rLoop (i32.lt_u (local.get $k) (local.get $end)))))
                  (else
                (local.set $b (i32.const 0))
                (loop $bLoop
                  (local.set $col (i32.sub (i32.add (local.get $xs) (local.get $b)) (local.get $padLeft)))
                  (local.set $p0 (select (i32.add (local.get $row) (i32.mul (local.get $col) (local.get $xStep))) (local.get $zero)
                    (i32.lt_u (local.get $col) (local.get $wd))))
                  (local.set $col (i32.add (local.get $col) (i32.const 1)))
                  (local.set $p1 (select (i32.add (local.get $row) (i32.mul (local.get $col) (local.get $xStep))) (local.get $zero)
                    (i32.lt_u (local.get $col) (local.get $wd))))
                  (local.set $col (i32.add (local.get $col) (i32.const 1)))
                  (local.set $p2 (select (i32.add (local.get $row) (i32.mul (local.get $col) (local.get $xStep))) (local.get $zero)
                    (i32.lt_u (local.get $col) (local.get $wd))))
                  (local.set $col (i32.add (local.get $col) (i32.const 1)))
                  (local.set $p3 (select (i32.add (local.get $row) (i32.mul (local.get $col) (local.get $xStep))) (local.get $zero)
                    (i32.lt_u (local.get $col) (local.get $wd))))
                  ;; packed w[o0 / 8][(a·kw + b)·ci][0 .. 8]
                  (local.set $wp (i32.add (local.get $w) (i32.shl
                    (i32.add (i32.mul (local.get $o0) (i32.mul (i32.mul (local.get $kh) (local.get $kw)) (local.get $ci)))
                      (i32.shl (i32.mul (i32.add (i32.mul (local.get $a) (local.get $kw)) (local.get $b)) (local.get $ci)) (i32.const 3)))
                    (i32.const 2))))
                  (local.set $k (i32.const 0))
                  (loop $kLoop
                    (local.set $w0 (v128.load (local.get $wp)))
                    (local.set $w1 (v128.load offset=16 (local.get $wp)))
                    (local.set $s (v128.load32_splat (i32.add (local.get $p0) (local.get $k))))
                    (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $s) (local.get $w0))))
                    (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $s) (local.get $w1))))
                    (local.set $s (v128.load32_splat (i32.add (local.get $p1) (local.get $k))))
                    (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $s) (local.get $w0))))
                    (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $s) (local.get $w1))))
                    (local.set $s (v128.load32_splat (i32.add (local.get $p2) (local.get $k))))
                    (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $s) (local.get $w0))))
                    (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $s) (local.get $w1))))
                    (local.set $s (v128.load32_splat (i32.add (local.get $p3) (local.get $k))))
                    (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $s) (local.get $w0))))
                    (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $s) (local.get $w1))))
                    (local.set $wp (i32.add (local.get $wp) (i32.const 32)))
                    (local.set $k (i32.add (local.get $k) (i32.const 4)))
                    (br_if $kLoop (i32.lt_u (local.get $k) (local.get $ciBytes))))
                  (local.set $b (i32.add (local.get $b) (i32.const 1)))
                  (br_if $bLoop (i32.lt_u (local.get $b) (local.get $kw))))))))
              (local.set $a (i32.add (local.get $a) (i32.const 1)))
              (br_if $aLoop (i32.lt_u (local.get $a) (local.get $kh))))
            (if (local.get $bias) (then
              (local.set $b0 (v128.load (i32.add (local.get $bias) (i32.shl (local.get $o0) (i32.const 2)))))
              (local.set $b1 (v128.load offset=16 (i32.add (local.get $bias) (i32.shl (local.get $o0) (i32.const 2)))))
              (local.set $a00 (f32x4.add (local.get $a00) (local.get $b0))) (local.set $a01 (f32x4.add (local.get $a01) (local.get $b1)))
              (local.set $a10 (f32x4.add (local.get $a10) (local.get $b0))) (local.set $a11 (f32x4.add (local.get $a11) (local.get $b1)))
              (local.set $a20 (f32x4.add (local.get $a20) (local.get $b0))) (local.set $a21 (f32x4.add (local.get $a21) (local.get $b1)))
              (local.set $a30 (f32x4.add (local.get $a30) (local.get $b0))) (local.set $a31 (f32x4.add (local.get $a31) (local.get $b1)))))
            (if (local.get $act) (then
              (local.set $a00 (f32x4.max (local.get $a00) (f32x4.mul (local.get $a00) (local.get $al))))
              (local.set $a01 (f32x4.max (local.get $a01) (f32x4.mul (local.get $a01) (local.get $al))))
              (local.set $a10 (f32x4.max (local.get $a10) (f32x4.mul (local.get $a10) (local.get $al))))
              (local.set $a11 (f32x4.max (local.get $a11) (f32x4.mul (local.get $a11) (local.get $al))))
              (local.set $a20 (f32x4.max (local.get $a20) (f32x4.mul (local.get $a20) (local.get $al))))
              (local.set $a21 (f32x4.max (local.get $a21) (f32x4.mul (local.get $a21) (local.get $al))))
              (local.set $a30 (f32x4.max (local.get $a30) (f32x4.mul (local.get $a30) (local.get $al))))
              (local.set $a31 (f32x4.max (local.get $a31) (f32x4.mul (local.get $a31) (local.get $al))))))
            ;; out[img, y, xs .. xs + 4, o0 .. o0 + 8]
            (local.set $dst (i32.add (local.get $out) (i32.shl
              (i32.add (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $img) (local.get $ho)) (local.get $y)) (local.get $wo)) (local.get $xs)) (local.get $co)) (local.get $o0))
              (i32.const 2))))
            (v128.store (local.get $dst) (local.get $a00))
            (v128.store offset=16 (local.get $dst) (local.get $a01))
            (local.set $dst (i32.add (local.get $dst) (local.get $oStep)))
            (v128.store (local.get $dst) (local.get $a10))
            (v128.store offset=16 (local.get $dst) (local.get $a11))
            (local.set $dst (i32.add (local.get $dst) (local.get $oStep)))
            (v128.store (local.get $dst) (local.get $a20))
            (v128.store offset=16 (local.get $dst) (local.get $a21))
            (local.set $dst (i32.add (local.get $dst) (local.get $oStep)))
            (v128.store (local.get $dst) (local.get $a30))
            (v128.store offset=16 (local.get $dst) (local.get $a31))
            (local.set $x0 (i32.add (local.get $x0) (i32.const 4)))
            (br_if $xLoop (i32.lt_s (local.get $x0) (local.get $wo))))
          (local.set $y (i32.add (local.get $y) (i32.const 1)))
          (br_if $yLoop (i32.lt_s (local.get $y) (local.get $ho))))
        (local.set $img (i32.add (local.get $img) (i32.const 1)))
        (br_if $imgLoop (i32.lt_u (local.get $img) (local.get $n))))
      (local.set $o0 (i32.add (local.get $o0) (i32.const 8)))
      (br_if $oLoop (i32.lt_u (local.get $o0) (local.get $co)))))

  ;; A one-channel x [rows, w] as [rows, wo, lanes] (lanes a multiple of 4, kw ≤ lanes): lane b of
  ;; column j holds x[row, j + b − padLeft] for b < kw, zero outside the row and in the lanes from
  ;; kw on. Four lanes are one load where their taps lie inside the row (the lanes from kw on
  ;; masked off), else one value at a time.
  (func (export "tap_columns") (param $x i32) (param $out i32) (param $rows i32) (param $w i32) (param $wo i32)
      (param $kw i32) (param $padLeft i32) (param $lanes i32)
    (local $r i32) (local $j i32) (local $g i32) (local $b i32) (local $col i32) (local $row i32) (local $keep i32)
    (local $mask v128)
    (local.set $r (i32.const 0))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.add (local.get $x) (i32.shl (i32.mul (local.get $r) (local.get $w)) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $colsDone
          (loop $colLoop
            (br_if $colsDone (i32.ge_u (local.get $j) (local.get $wo)))
            (local.set $g (i32.const 0))
            (loop $groupLoop
              ;; taps g .. g + 3 of column j: columns col .. col + 3 of the row, `keep` of them wanted
              (local.set $col (i32.sub (i32.add (local.get $j) (local.get $g)) (local.get $padLeft)))
              (local.set $keep (i32.sub (local.get $kw) (local.get $g)))
              (if (i32.and (i32.ge_s (local.get $col) (i32.const 0)) (i32.le_s (i32.add (local.get $col) (i32.const 4)) (local.get $w)))
                (then
                  (local.set $mask (v128.const i32x4 -1 -1 -1 -1))
                  (if (i32.lt_s (local.get $keep) (i32.const 4)) (then
                    (local.set $mask (i32x4.gt_s
                      (i32x4.splat (local.get $keep))
                      (v128.const i32x4 0 1 2 3)))))
                  (v128.store (local.get $out) (v128.and (v128.load (i32.add (local.get $row) (i32.shl (local.get $col) (i32.const 2)))) (local.get $mask))))
                (else
                  (local.set $b (i32.const 0))
                  (loop $laneLoop
                    (f32.store (i32.add (local.get $out) (i32.shl (local.get $b) (i32.const 2)))
                      (if (result f32) (i32.and (i32.lt_s (local.get $b) (local.get $keep)) (i32.lt_u (local.get $col) (local.get $w)))
                        (then (f32.load (i32.add (local.get $row) (i32.shl (local.get $col) (i32.const 2)))))
                        (else (f32.const 0))))
                    (local.set $col (i32.add (local.get $col) (i32.const 1)))
                    (local.set $b (i32.add (local.get $b) (i32.const 1)))
                    (br_if $laneLoop (i32.lt_u (local.get $b) (i32.const 4))))))
              (local.set $out (i32.add (local.get $out) (i32.const 16)))
              (local.set $g (i32.add (local.get $g) (i32.const 4)))
              (br_if $groupLoop (i32.lt_u (local.get $g) (local.get $lanes))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $colLoop)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowLoop))))

  ;; The filter [kh, kw, ci, co] (co a multiple of 8) in conv_forward's order: dst[o / 8][t][o % 8]
  ;; = src[t][o] for the kh·kw·ci rows t.
  (func (export "pack_filter") (param $src i32) (param $dst i32) (param $rows i32) (param $co i32)
    (local $o0 i32) (local $t i32) (local $sp i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $co) (i32.const 2)))
    (local.set $o0 (i32.const 0))
    (loop $oLoop
      (local.set $sp (i32.add (local.get $src) (i32.shl (local.get $o0) (i32.const 2))))
      (local.set $t (i32.const 0))
      (loop $tLoop
        (v128.store (local.get $dst) (v128.load (local.get $sp)))
        (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $sp)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (local.set $sp (i32.add (local.get $sp) (local.get $rowBytes)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br_if $tLoop (i32.lt_u (local.get $t) (local.get $rows))))
      (local.set $o0 (i32.add (local.get $o0) (i32.const 8)))
      (br_if $oLoop (i32.lt_u (local.get $o0) (local.get $co)))))
)
