// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.graphics;
public class Color {
  public static final int BLACK = 0xFF000000;
  public static final int WHITE = 0xFFFFFFFF;
  public static int red(int color) { throw new UnsupportedOperationException(); }
  public static int green(int color) { throw new UnsupportedOperationException(); }
  public static int blue(int color) { throw new UnsupportedOperationException(); }
}
