// A toy stand-in for the executorch-android runtime, for tests/test_sdk_lm_jvm.py only (never packaged):
// the same public signatures as the compile-check stub (sample_apps/android/compile-check/stubs/executorch),
// with a "forward(tokens, input_pos)" program that keeps a cache between calls like an exporters/llm .pte.
// The toy LM: the logit of token (sum of the cached tokens 0..last + last) % V is 1, every other one -1
// (V = system property toy.vocab); tests/test_sdk.py::test_reference_drives_an_lm_program_by_the_runner_protocol
// drives the same toy from Python.
package org.pytorch.executorch

import java.io.Closeable

enum class DType(@JvmField val jniCode: Int) {
    UINT8(0), INT8(1), INT16(2), INT32(3), INT64(4), HALF(5), FLOAT(6), DOUBLE(7), COMPLEX_HALF(8), COMPLEX_FLOAT(9),
    COMPLEX_DOUBLE(10), BOOL(11), QINT8(12), QUINT8(13), QINT32(14), BFLOAT16(15), QINT4X2(16), QINT2X4(17),
    BITS1X8(18), BITS2X4(19), BITS4X2(20), BITS8(21), BITS16(22),
}

abstract class Tensor internal constructor(@JvmField internal val shape: LongArray) {
    fun shape(): LongArray = shape
    abstract fun dtype(): DType
    open val dataAsIntArray: IntArray get() = throw IllegalStateException("not int32")
    open val dataAsFloatArray: FloatArray get() = throw IllegalStateException("not float")
    open val dataAsLongArray: LongArray get() = throw IllegalStateException("not int64")

    companion object {
        @JvmStatic fun fromBlob(data: FloatArray, shape: LongArray): Tensor = object : Tensor(shape) {
            override fun dtype() = DType.FLOAT
            override val dataAsFloatArray: FloatArray get() = data
        }

        @JvmStatic fun fromBlob(data: LongArray, shape: LongArray): Tensor = object : Tensor(shape) {
            override fun dtype() = DType.INT64
            override val dataAsLongArray: LongArray get() = data
        }
    }
}

class EValue private constructor(private val tensor: Tensor) {
    val isTensor: Boolean get() = true
    fun toTensor(): Tensor = tensor

    companion object {
        @JvmStatic fun from(tensor: Tensor): EValue = EValue(tensor)
    }
}

open class Module private constructor() : Closeable {
    private val cache = HashMap<Long, Long>()
    private val vocab = System.getProperty("toy.vocab").toInt()
    val calls = ArrayList<Pair<Int, Long>>()

    open fun execute(methodName: String, vararg inputs: EValue): Array<EValue> {
        require(methodName == "forward") { "unknown method $methodName" }
        val tokens = inputs[0].toTensor().dataAsLongArray
        val pos = inputs[1].toTensor().dataAsLongArray[0]
        calls.add(Pair(tokens.size, pos))
        tokens.forEachIndexed { i, t -> cache[pos + i] = t }
        val last = pos + tokens.size - 1
        var sum = last
        for (i in 0..last) sum += cache.getValue(i)
        val logits = FloatArray(vocab) { -1f }
        logits[(sum % vocab).toInt()] = 1f
        return arrayOf(EValue.from(Tensor.fromBlob(logits, longArrayOf(1, vocab.toLong()))))
    }

    open fun destroy() {}
    override fun close() {}

    companion object {
        @JvmStatic @JvmOverloads
        fun load(modelPath: String?, loadMode: Int = 0, numThreads: Int = 0): Module = Module()
    }
}
