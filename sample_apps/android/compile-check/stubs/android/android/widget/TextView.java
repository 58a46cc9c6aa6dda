// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.widget;
public class TextView extends android.view.View {
  public TextView(android.content.Context context) { super(context); }
  public CharSequence getText() { throw new UnsupportedOperationException(); }
  public final void setText(CharSequence text) { throw new UnsupportedOperationException(); }
  public float getTextSize() { throw new UnsupportedOperationException(); }
  public void setTextSize(float size) { throw new UnsupportedOperationException(); }
  public android.graphics.Typeface getTypeface() { throw new UnsupportedOperationException(); }
  public void setTypeface(android.graphics.Typeface tf) { throw new UnsupportedOperationException(); }
}
