// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package android.widget;
public class LinearLayout extends android.view.ViewGroup {
  public static final int HORIZONTAL = 0;
  public static final int VERTICAL = 1;
  public LinearLayout(android.content.Context context) { super(context); }
  public int getOrientation() { throw new UnsupportedOperationException(); }
  public void setOrientation(int orientation) { throw new UnsupportedOperationException(); }
}
