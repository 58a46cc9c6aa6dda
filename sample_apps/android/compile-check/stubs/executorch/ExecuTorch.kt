// Signature-only stub of the executorch-android public API used by generated SDKs (compile checks only:
// tests/test_sdk_compile.py compiles generated Kotlin against it with kotlinc -Werror; never packaged).
//
// Written from pytorch/executorch at tag v1.4.1 (the newest release tag readable from this project's
// machines; the pinned 1.5.1 tag was not), files under
// extension/android/executorch_android/src/main/java/org/pytorch/executorch/:
//   Module.kt   `open class Module ... : Closeable` (line 25), `fun load(modelPath: String?, loadMode: Int =
//               LOAD_MODE_FILE, numThreads: Int = 0): Module` (line 253), `open fun execute(methodName: String,
//               vararg inputs: EValue): Array<EValue>` (line 66), `open fun loadMethod(methodName: String)` (86),
//               `open fun destroy()` (204), `override fun close()` (218), LOAD_MODE_* constants (233-242)
//   EValue.kt   `val isTensor` (52), `fun toTensor(): Tensor` (68), `@JvmStatic fun from(tensor: Tensor)` (160)
//   Tensor.kt   `abstract class Tensor` (44), `fun shape(): LongArray` (60), `abstract fun dtype(): DType` (62),
//               `open val dataAsFloatArray` (91), `open val dataAsLongArray` (146), `open val dataAsIntArray` (85),
//               `fun fromBlob(data: LongArray|FloatArray|IntArray, shape: LongArray): Tensor` (546, 528, 519)
//   DType.kt    `enum class DType(@JvmField val jniCode: Int)` with UINT8..BITS16 (entries as listed there)
// The same signatures are unchanged on main at cff6f4dd32e630945b7188512c1f2b4f102b05ad (version 1.5.0 dev),
// which only adds an overload `load(modelPath, options: BackendOptionsMap, ...)`.
package org.pytorch.executorch

import java.io.Closeable

private fun stub(): Nothing = throw UnsupportedOperationException("compile-check stub of executorch-android")

enum class DType(@JvmField val jniCode: Int) {
    UINT8(0), INT8(1), INT16(2), INT32(3), INT64(4), HALF(5), FLOAT(6), DOUBLE(7), COMPLEX_HALF(8), COMPLEX_FLOAT(9),
    COMPLEX_DOUBLE(10), BOOL(11), QINT8(12), QUINT8(13), QINT32(14), BFLOAT16(15), QINT4X2(16), QINT2X4(17),
    BITS1X8(18), BITS2X4(19), BITS4X2(20), BITS8(21), BITS16(22),
}

abstract class Tensor internal constructor(@JvmField internal val shape: LongArray) {
    fun numel(): Long = stub()
    fun shape(): LongArray = stub()
    abstract fun dtype(): DType
    open val dataAsIntArray: IntArray get() = stub()
    open val dataAsFloatArray: FloatArray get() = stub()
    open val dataAsLongArray: LongArray get() = stub()

    companion object {
        @JvmStatic fun fromBlob(data: IntArray, shape: LongArray): Tensor = stub()
        @JvmStatic fun fromBlob(data: FloatArray, shape: LongArray): Tensor = stub()
        @JvmStatic fun fromBlob(data: LongArray, shape: LongArray): Tensor = stub()
    }
}

class EValue private constructor(@JvmField val mTypeCode: Int) {
    val isNone: Boolean get() = stub()
    val isTensor: Boolean get() = stub()
    fun toTensor(): Tensor = stub()

    companion object {
        @JvmStatic fun from(tensor: Tensor): EValue = stub()
    }
}

open class Module private constructor(moduleAbsolutePath: String, loadMode: Int, numThreads: Int) : Closeable {
    open fun forward(vararg inputs: EValue): Array<EValue> = stub()
    open fun execute(methodName: String, vararg inputs: EValue): Array<EValue> = stub()
    open fun loadMethod(methodName: String): Unit = stub()
    open fun getMethods(): Array<String> = stub()
    open fun destroy(): Unit = stub()
    override fun close(): Unit = stub()

    companion object {
        const val LOAD_MODE_FILE = 0
        const val LOAD_MODE_MMAP = 1
        const val LOAD_MODE_MMAP_USE_MLOCK = 2
        const val LOAD_MODE_MMAP_USE_MLOCK_IGNORE_ERRORS = 3

        @JvmStatic @JvmOverloads
        fun load(modelPath: String?, loadMode: Int = LOAD_MODE_FILE, numThreads: Int = 0): Module = stub()
    }
}
