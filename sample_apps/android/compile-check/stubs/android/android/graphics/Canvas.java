// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.graphics;
public class Canvas {
  public Canvas(Bitmap bitmap) { throw new UnsupportedOperationException(); }
  public void drawColor(int color) { throw new UnsupportedOperationException(); }
  public void drawPath(Path path, Paint paint) { throw new UnsupportedOperationException(); }
  public void drawBitmap(Bitmap bitmap, float left, float top, Paint paint) { throw new UnsupportedOperationException(); }
}
