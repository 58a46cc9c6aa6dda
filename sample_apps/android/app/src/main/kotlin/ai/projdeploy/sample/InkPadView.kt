// A drawing pad: black ink on white, read back as the model's grid of ink intensities in [0, 1].
package ai.projdeploy.sample

import ai.projdeploy.sdk.digits_cls.DigitsCls
import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.Path
import android.view.MotionEvent
import android.view.View

class InkPadView(context: Context, private val onStroke: (DoubleArray) -> Unit) : View(context) {
    private val side = 576
    private val bitmap = Bitmap.createBitmap(side, side, Bitmap.Config.ARGB_8888)
    private val canvas = Canvas(bitmap)
    private val path = Path()
    private val paint = Paint().apply {
        color = Color.BLACK; style = Paint.Style.STROKE; strokeWidth = side / 9f
        strokeCap = Paint.Cap.ROUND; strokeJoin = Paint.Join.ROUND; isAntiAlias = true
    }

    init { clear() }

    fun clear() {
        canvas.drawColor(Color.WHITE)
        path.reset()
        invalidate()
    }

    override fun onMeasure(widthMeasureSpec: Int, heightMeasureSpec: Int) = setMeasuredDimension(side, side)

    override fun onDraw(c: Canvas) {
        c.drawBitmap(bitmap, 0f, 0f, null)
        c.drawPath(path, paint)
    }

    override fun onTouchEvent(e: MotionEvent): Boolean {
        when (e.action) {
            MotionEvent.ACTION_DOWN -> path.moveTo(e.x, e.y)
            MotionEvent.ACTION_MOVE -> path.lineTo(e.x, e.y)
            MotionEvent.ACTION_UP -> {
                canvas.drawPath(path, paint)
                path.reset()
                onStroke(pixels())
            }
        }
        invalidate()
        return true
    }

    /** Mean ink (1 - luminance) of each cell of the model's grid, row-major (as in the web sample). */
    fun pixels(): DoubleArray {
        val h = DigitsCls.IMAGE_SHAPE[0]
        val w = DigitsCls.IMAGE_SHAPE[1]
        val out = DoubleArray(h * w)
        val counts = DoubleArray(h * w)
        for (y in 0 until side) for (x in 0 until side) {
            val p = bitmap.getPixel(x, y)
            val lum = (0.299 * Color.red(p) + 0.587 * Color.green(p) + 0.114 * Color.blue(p)) / 255.0
            val cell = minOf(h - 1, y * h / side) * w + minOf(w - 1, x * w / side)
            out[cell] += 1 - lum
            counts[cell] += 1.0
        }
        return DoubleArray(h * w) { out[it] / counts[it] }
    }
}
