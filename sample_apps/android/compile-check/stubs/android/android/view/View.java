// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.view;
public class View {
  public View(android.content.Context context) { throw new UnsupportedOperationException(); }
  public interface OnClickListener { void onClick(View v); }
  public void invalidate() { throw new UnsupportedOperationException(); }
  protected void onMeasure(int widthMeasureSpec, int heightMeasureSpec) { throw new UnsupportedOperationException(); }
  protected final void setMeasuredDimension(int measuredWidth, int measuredHeight) { throw new UnsupportedOperationException(); }
  protected void onDraw(android.graphics.Canvas canvas) { throw new UnsupportedOperationException(); }
  public boolean onTouchEvent(MotionEvent event) { throw new UnsupportedOperationException(); }
  public void setOnClickListener(OnClickListener l) { throw new UnsupportedOperationException(); }
  public void setPadding(int left, int top, int right, int bottom) { throw new UnsupportedOperationException(); }
  public boolean isEnabled() { throw new UnsupportedOperationException(); }
  public void setEnabled(boolean enabled) { throw new UnsupportedOperationException(); }
}
