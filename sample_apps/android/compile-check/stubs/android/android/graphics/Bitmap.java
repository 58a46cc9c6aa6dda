// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.graphics;
public final class Bitmap {
  private Bitmap() {}
  public enum Config { ALPHA_8, RGB_565, ARGB_8888 }
  public static Bitmap createBitmap(int width, int height, Config config) { throw new UnsupportedOperationException(); }
  public int getPixel(int x, int y) { throw new UnsupportedOperationException(); }
}
