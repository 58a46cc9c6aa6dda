// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.view;
public final class MotionEvent {
  private MotionEvent() {}
  public static final int ACTION_DOWN = 0;
  public static final int ACTION_UP = 1;
  public static final int ACTION_MOVE = 2;
  public final int getAction() { throw new UnsupportedOperationException(); }
  public final float getX() { throw new UnsupportedOperationException(); }
  public final float getY() { throw new UnsupportedOperationException(); }
}
