// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.graphics;
public class Path {
  public void reset() { throw new UnsupportedOperationException(); }
  public void moveTo(float x, float y) { throw new UnsupportedOperationException(); }
  public void lineTo(float x, float y) { throw new UnsupportedOperationException(); }
}
