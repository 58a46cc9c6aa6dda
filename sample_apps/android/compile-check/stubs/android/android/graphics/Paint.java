// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.graphics;
public class Paint {
  public enum Style { FILL, STROKE, FILL_AND_STROKE }
  public enum Cap { BUTT, ROUND, SQUARE }
  public enum Join { MITER, ROUND, BEVEL }
  public int getColor() { throw new UnsupportedOperationException(); }
  public void setColor(int color) { throw new UnsupportedOperationException(); }
  public Style getStyle() { throw new UnsupportedOperationException(); }
  public void setStyle(Style style) { throw new UnsupportedOperationException(); }
  public float getStrokeWidth() { throw new UnsupportedOperationException(); }
  public void setStrokeWidth(float width) { throw new UnsupportedOperationException(); }
  public Cap getStrokeCap() { throw new UnsupportedOperationException(); }
  public void setStrokeCap(Cap cap) { throw new UnsupportedOperationException(); }
  public Join getStrokeJoin() { throw new UnsupportedOperationException(); }
  public void setStrokeJoin(Join join) { throw new UnsupportedOperationException(); }
  public final boolean isAntiAlias() { throw new UnsupportedOperationException(); }
  public void setAntiAlias(boolean aa) { throw new UnsupportedOperationException(); }
}
